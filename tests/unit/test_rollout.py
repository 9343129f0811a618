"""HF rollout engine: padding, grouping, finish reasons, stop strings."""

import torch

from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model
from archer.rollout.hf import HFRolloutEngine, left_pad, response_lengths


def test_left_pad_and_response_lengths_hand_cases():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[True] * 3, [False, False, True]]
    # EOS (2) ends a response and is part of it; without EOS the response is as long as where its
    # stop string completed, or every generated column; padding never decides
    responses = torch.tensor([[9, 2, 0, 0], [9, 9, 9, 9], [9, 9, 0, 0], [2, 0, 0, 0]])
    lengths, stopped = response_lengths(responses, eos_ids=[2])
    assert lengths.tolist() == [2, 4, 4, 1] and stopped.tolist() == [True, False, False, True]
    lengths, stopped = response_lengths(responses, eos_ids=[2], stop_lengths=torch.tensor([9, 9, 2, 9]))
    assert lengths.tolist() == [2, 4, 2, 1] and stopped.tolist() == [True, False, False, True]
    # pad == EOS after a stop string: the pad is not a sampled EOS
    padded_with_eos = torch.tensor([[9, 9, 2, 2]])
    lengths, stopped = response_lengths(padded_with_eos, eos_ids=[2], stop_lengths=torch.tensor([2]))
    assert lengths.tolist() == [2] and stopped.tolist() == [False]


def test_generate_groups_responses_and_reports_truncation():
    torch.manual_seed(0)
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    engine = HFRolloutEngine(max_new_tokens=6, batch_size=5).bind(tok)  # 5 splits 3 x 4 rows unevenly
    prompts = [tok.encode("1+2\n"), tok.encode("13+4+5\n"), tok.encode("7\n")]
    out = engine.generate(model, prompts, n=4)
    assert out.group_ids.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert out.response_ids.shape == (12, 6) and out.prompt_ids.shape == (12, 7)
    assert out.prompt_mask.sum(-1).tolist() == [4] * 4 + [7] * 4 + [2] * 4
    lengths = out.response_mask.sum(-1)
    # a response is truncated exactly when it used the whole budget without EOS
    eos_seen = [(row[:n] == tok.eos_token_id).any().item() for row, n in zip(out.response_ids, lengths)]
    assert out.truncated.tolist() == [n == 6 and not e for n, e in zip(lengths.tolist(), eos_seen)]
    # padding is written as the pad id, and texts decode the real tokens
    assert (out.response_ids[~out.response_mask] == tok.pad_token_id).all()
    assert out.texts[0] == tok.decode(out.response_ids[0][out.response_mask[0]], skip_special_tokens=True)


def test_stop_strings_end_responses_without_truncation():
    torch.manual_seed(0)
    tok = build_char_tokenizer()
    model = build_tiny_model(tok, TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    # make "#" overwhelmingly likely so every response stops on the stop string at once
    with torch.no_grad():
        model.lm_head.weight[tok.convert_tokens_to_ids("#")] += 50.0 * model.model.norm.weight.sign()
    engine = HFRolloutEngine(max_new_tokens=8, stop_strings=["#"]).bind(tok)
    out = engine.generate(model, [tok.encode("1+1\n")], n=3)
    assert all(text.endswith("#") for text in out.texts)
    assert not out.truncated.any()
