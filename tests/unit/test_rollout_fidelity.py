"""Rollouts sample from the policy alone, in the configured precision, and train only sampled tokens."""

from __future__ import annotations

import pytest
import torch

from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model
from archer.rollout import HFRolloutEngine, LeanRolloutEngine
from archer.rollout.hf import left_pad


def _model(dtype=torch.float32):
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64))
    return model.to(dtype).eval(), tokenizer


def _generate(engine_class, model, tokenizer, seed=3, **settings):
    prompts = [tokenizer.encode("1+2\n"), tokenizer.encode("13+4+5\n")]
    torch.manual_seed(seed)
    return engine_class(max_new_tokens=12, **settings).bind(tokenizer).generate(model, prompts, n=4)


def test_the_models_generation_config_never_changes_what_is_sampled():
    """Qwen-Instruct models ship a repetition penalty; neither engine may apply it (or any other
    processor of the model's generation_config): hf and lean draw the same tokens."""
    model, tokenizer = _model()
    with torch.no_grad():  # "1" very likely: repeats, which the model's processors would ban
        model.lm_head.weight[tokenizer.convert_tokens_to_ids("1")] += 3.0 * model.model.norm.weight.sign()
    plain_hf, plain_lean = _generate(HFRolloutEngine, model, tokenizer), _generate(LeanRolloutEngine, model, tokenizer)
    config = model.generation_config
    config.repetition_penalty, config.no_repeat_ngram_size, config.min_new_tokens = 1.3, 2, 5
    config.suppress_tokens, config.top_k = [5, 6, 7], 3
    hf, lean = _generate(HFRolloutEngine, model, tokenizer), _generate(LeanRolloutEngine, model, tokenizer)
    assert torch.equal(hf.response_ids, lean.response_ids) and torch.equal(hf.response_mask, lean.response_mask)
    assert torch.equal(hf.response_ids, plain_hf.response_ids) and torch.equal(lean.response_ids, plain_lean.response_ids)
    # the penalties do change generate's draws when they are allowed in (so the test can fail)
    ids, mask = left_pad([tokenizer.encode("1+2\n")] * 4 + [tokenizer.encode("13+4+5\n")] * 4, tokenizer.pad_token_id)
    torch.manual_seed(3)
    penalised = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=12, top_k=0,
                               pad_token_id=tokenizer.pad_token_id, eos_token_id=[tokenizer.eos_token_id])
    assert not torch.equal(penalised[:, ids.shape[1]:][:, :hf.response_ids.shape[1]], hf.response_ids)
    assert model.generation_config.repetition_penalty == 1.3  # the model's own config is left as it was


def test_a_stop_string_with_pad_equal_to_eos_never_trains_an_unsampled_eos():
    model, tokenizer = _model()
    tokenizer.pad_token = tokenizer.eos_token  # what load_pretrained does for tokenizers without a pad
    with torch.no_grad():  # make "#" likely so responses stop on the stop string at different steps
        model.lm_head.weight[tokenizer.convert_tokens_to_ids("#")] += 0.8 * model.model.norm.weight.sign()
    for engine in (HFRolloutEngine, LeanRolloutEngine):
        out = _generate(engine, model, tokenizer, stop_strings=["#"])
        stopped = [i for i, t in enumerate(out.texts) if t.endswith("#")]
        assert stopped and len(set(out.response_mask.sum(-1).tolist())) > 1
        for i in stopped:
            tokens = out.response_ids[i][out.response_mask[i]].tolist()
            assert tokens[-1] == tokenizer.convert_tokens_to_ids("#"), tokens  # the last trained token was sampled
            assert tokenizer.eos_token_id not in tokens
        assert not out.truncated[stopped].any()


@pytest.mark.parametrize("engine", [HFRolloutEngine, LeanRolloutEngine])
@pytest.mark.parametrize(("weights", "sampling", "autocast"), [
    (torch.bfloat16, None, False),          # a bf16 model (evaluation, pure-bf16 training)
    (torch.bfloat16, None, True),
    (torch.float32, "bfloat16", False),     # fp32 master weights, bf16 sampling
    (torch.float32, "bfloat16", True),      # ... inside Lightning's bf16-mixed autocast
    (torch.float32, "float32", True),       # fp32 sampling despite an ambient autocast
])
def test_every_engine_samples_from_bf16_and_fp32_policies_with_and_without_autocast(engine, weights, sampling, autocast):
    model, tokenizer = _model(weights)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else torch.autocast("cpu", enabled=False)
    with context:
        out = _generate(engine, model, tokenizer, dtype=sampling)
    assert out.response_ids.shape[0] == 8 and out.response_mask.any(-1).all()
    assert next(model.parameters()).dtype == weights  # sampling never changes the policy's weights


def test_bf16_sampling_of_an_fp32_policy_follows_the_bf16_model():
    """Greedy continuations in bf16 from fp32 weights equal those of a bf16 copy of the model
    (the fused decoder casts the weights; generate runs under autocast)."""
    model, tokenizer = _model()
    copy_bf16 = _model(torch.bfloat16)[0]
    prompts = [tokenizer.encode("12+3\n")]
    torch.manual_seed(0)
    from_fp32 = LeanRolloutEngine(max_new_tokens=10, top_k=1, dtype="bfloat16").bind(tokenizer).generate(model, prompts)
    from_bf16 = LeanRolloutEngine(max_new_tokens=10, top_k=1).bind(tokenizer).generate(copy_bf16, prompts)
    assert torch.equal(from_fp32.response_ids, from_bf16.response_ids)
