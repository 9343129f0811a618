"""The lean sampler against transformers' generate: same greedy continuations, same sampling
distribution after temperature / top-k / top-p filtering."""

from __future__ import annotations

import pytest
import torch

from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model
from archer.rollout import HFRolloutEngine, LeanRolloutEngine
from archer.rollout.hf import left_pad
from archer.rollout.sampling import filter_logits, sample


def _model():
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64))
    return model.eval(), tokenizer


def test_greedy_continuations_equal_generate_with_left_padding():
    model, tokenizer = _model()
    prompts = [tokenizer.encode(text, add_special_tokens=False) for text in ["1+2+3=", "45+6=", "7="]]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    eos = [tokenizer.eos_token_id]
    ours = sample(model, ids, mask, 12, eos, tokenizer.pad_token_id, temperature=1.0, top_k=1)
    theirs = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=12,
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)[:, ids.shape[1]:]
    assert torch.equal(ours, theirs[:, : ours.shape[1]])


def test_filtering_matches_hf_warpers():
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    torch.manual_seed(1)
    logits = torch.randn(4, 50)
    expected = TopPLogitsWarper(0.7)(None, TopKLogitsWarper(10)(None, TemperatureLogitsWarper(0.8)(None, logits.clone())))
    ours = filter_logits(logits, 0.8, 10, 0.7)
    assert torch.equal(torch.isinf(ours), torch.isinf(expected))
    torch.testing.assert_close(ours.softmax(-1), expected.softmax(-1))


def test_sampled_token_frequencies_follow_the_model():
    """First-token frequencies over many draws match the model's softmax at temperature 0.7."""
    model, tokenizer = _model()
    prompt = tokenizer.encode("12+3=", add_special_tokens=False)
    ids, mask = left_pad([prompt] * 4000, tokenizer.pad_token_id)
    torch.manual_seed(2)
    first = sample(model, ids, mask, 1, [tokenizer.eos_token_id], tokenizer.pad_token_id, temperature=0.7)[:, 0]
    with torch.no_grad():
        probs = (model(input_ids=ids[:1]).logits[0, -1] / 0.7).softmax(-1)
    counts = torch.bincount(first, minlength=probs.numel()).float() / first.numel()
    top = probs.topk(5).indices
    assert (counts[top] - probs[top]).abs().max() < 0.03


def test_engine_uses_generate_for_stop_strings_and_both_paths_finish_rows_with_eos():
    model, tokenizer = _model()
    prompts = [tokenizer.encode("1+1=", add_special_tokens=False)] * 3
    for engine_class in (LeanRolloutEngine, HFRolloutEngine):
        engine = engine_class(max_new_tokens=6).bind(tokenizer)
        batch = engine.generate(model, prompts, n=2)
        assert batch.response_ids.shape[0] == 6 and batch.response_mask.sum(-1).le(6).all()


def test_repeated_samples_share_the_prompt_run_and_equal_repeated_rows():
    """repeats=n from one run per prompt gives the greedy rows of n copies of each prompt."""
    model, tokenizer = _model()
    prompts = [tokenizer.encode(text, add_special_tokens=False) for text in ["9+9=", "123+4="]]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    shared = sample(model, ids, mask, 8, [tokenizer.eos_token_id], tokenizer.pad_token_id, top_k=1, repeats=3)
    rows, row_mask = left_pad([p for p in prompts for _ in range(3)], tokenizer.pad_token_id)
    whole = sample(model, rows, row_mask, 8, [tokenizer.eos_token_id], tokenizer.pad_token_id, top_k=1)
    assert shared.shape[0] == 6 and torch.equal(shared, whole)


@pytest.mark.parametrize("family", ["qwen2_gqa", "llama"])
def test_fast_decode_step_matches_the_model_for_other_layouts(family):
    """The fused decode path (grouped-query attention, no q/k/v bias) gives the model's greedy tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from archer.rollout.fast_decode import FastDecoder

    torch.manual_seed(3)
    tokenizer = build_char_tokenizer()
    sizes = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = (Qwen2ForCausalLM(Qwen2Config(**sizes)) if family == "qwen2_gqa" else LlamaForCausalLM(LlamaConfig(**sizes))).eval()
    assert FastDecoder.supports(model)
    prompts = [tokenizer.encode(text, add_special_tokens=False) for text in ["5+5=", "77+1+2="]]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    ours = sample(model, ids, mask, 10, [tokenizer.eos_token_id], tokenizer.pad_token_id, top_k=1)
    theirs = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=10,
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=[tokenizer.eos_token_id])[:, ids.shape[1]:]
    assert torch.equal(ours, theirs[:, : ours.shape[1]])


def test_the_key_value_buffer_grows_with_the_responses_and_still_decodes_exactly(monkeypatch):
    """A 4-token growth block forces several doublings over 30 tokens; greedy output still equals generate's."""
    import archer.rollout.fast_decode as fast_decode

    monkeypatch.setattr(fast_decode, "GROWTH_BLOCK", 4)
    model, tokenizer = _model()
    prompts = [tokenizer.encode(text, add_special_tokens=False) for text in ["1+2+3=", "45+6="]]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    eos = [tokenizer.eos_token_id]
    ours = sample(model, ids, mask, 30, eos, tokenizer.pad_token_id, temperature=1.0, top_k=1)
    theirs = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=30,
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)[:, ids.shape[1]:]
    assert torch.equal(ours, theirs[:, : ours.shape[1]]) and ours.shape[1] == 30
    assert fast_decode.FastDecoder.supports(model)  # the fused decoder (and its buffer) was the one used


def test_call_plan_keeps_prompt_order_and_the_row_bound():
    from archer.rollout.lean import call_plan

    assert call_plan(5, 4, 8) == [([0, 1], 4), ([2, 3], 4), ([4], 4)]  # whole groups
    assert call_plan(2, 5, 2) == [([0], 2), ([0], 2), ([0], 1), ([1], 2), ([1], 2), ([1], 1)]  # split groups
    for prompts, n, bound in [(3, 7, 3), (4, 2, 5), (1, 16, 1)]:
        plan = call_plan(prompts, n, bound)
        assert all(len(p) * r <= bound for p, r in plan)
        assert [i for p, r in plan for i in p for _ in range(r)] == [i for i in range(prompts) for _ in range(n)]


def test_cache_memory_bound_caps_the_rows_of_each_call(monkeypatch):
    """rows x (longest prompt + max_new_tokens) x key/value bytes per token stays within
    rollout.cache_memory_gb; the rollout keeps its shape and order."""
    import archer.rollout.lean as lean
    from archer.rollout.fast_decode import FastDecoder
    from archer.rollout.hf import kv_bytes_per_token

    model, tokenizer = _model()
    # the formula counts what the fused decoder really allocates per row and token
    prompt = torch.tensor([[5, 6, 7]])
    cache = model(input_ids=prompt, use_cache=True).past_key_values
    decoder = FastDecoder(model, cache, batch=1, total_len=3 + 5)
    held = sum(t.numel() * t.element_size() for t in decoder.keys + decoder.values)
    assert held == kv_bytes_per_token(model) * decoder.capacity

    prompts = [tokenizer.encode(text, add_special_tokens=False) for text in ["1+2=", "34+5=", "6="]]
    per_row = kv_bytes_per_token(model) * (max(map(len, prompts)) + 10)
    calls = []
    real = lean.sample

    def spy(policy, ids, *args, repeats, **kwargs):
        calls.append(ids.shape[0] * repeats)
        return real(policy, ids, *args, repeats=repeats, **kwargs)

    monkeypatch.setattr(lean, "sample", spy)
    engine = LeanRolloutEngine(max_new_tokens=10, batch_size=64, cache_memory_gb=3.5 * per_row / 2**30).bind(tokenizer)
    assert engine.rows_per_call(model, prompts) == 3
    batch = engine.generate(model, prompts, n=4)
    assert calls == [3, 1, 3, 1, 3, 1] and max(calls) * per_row <= engine.cache_memory_gb * 2**30
    assert batch.group_ids.tolist() == [g for g in range(3) for _ in range(4)]
    assert batch.response_ids.shape[0] == 12 and batch.prompt_ids.shape[0] == 12
    calls.clear()
    LeanRolloutEngine(max_new_tokens=10, batch_size=64).bind(tokenizer).generate(model, prompts, n=4)
    assert calls == [12]  # no bound on CPU unless one is set
