"""Truncated importance sampling between the sampler and the trainer, and the samplers' own log-probs."""

from __future__ import annotations

import math

import pytest
import torch

from archer import ops
from archer.constraints import DualTokenConstraint, UniformConstraint
from archer.forward import response_logprobs
from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model
from archer.rollout import HFRolloutEngine, LeanRolloutEngine
from archer.types import PolicyBatch


def test_tis_weights_are_the_capped_probability_ratio():
    old = torch.tensor([[math.log(0.5), math.log(0.2), math.log(0.9)]])
    sampler = torch.tensor([[math.log(0.25), math.log(0.4), math.log(0.1)]])
    # ratios 0.5/0.25 = 2, 0.2/0.4 = 0.5, 0.9/0.1 = 9 -> capped at 3
    torch.testing.assert_close(ops.truncated_importance_weights(old, sampler, cap=3.0), torch.tensor([[2.0, 0.5, 3.0]]))


@pytest.mark.parametrize("constraint", [UniformConstraint(kl_coef=0.0, aggregation="seq_mean_token_mean"),
                                        DualTokenConstraint(low_entropy={"eps_low": 0.2, "eps_high": 0.2, "kl_coef": 0.0})])
def test_the_weights_scale_each_tokens_policy_term_and_none_leaves_the_loss_unchanged(constraint):
    logprobs = torch.zeros(2, 3, requires_grad=True)  # on-policy: ratio 1, each token's term is -A
    mask = torch.tensor([[True, True, True], [True, True, False]])
    high = torch.tensor([[True, False, False], [False, True, False]])
    advantages = torch.tensor([1.0, -2.0])
    plain = PolicyBatch(logprobs, logprobs.detach(), None, advantages, mask, high)
    ones = PolicyBatch(logprobs, logprobs.detach(), None, advantages, mask, high, rollout_weights=torch.ones(2, 3))
    assert constraint(plain).loss.item() == constraint(ones).loss.item()
    weights = torch.tensor([[2.0, 1.0, 0.5], [0.5, 1.0, 9.0]])
    weighted = PolicyBatch(logprobs, logprobs.detach(), None, advantages, mask, high, rollout_weights=weights)
    # per-response token means: row 0: -(2 + 1 + 0.5) / 3; row 1: 2 * (0.5 + 1) / 2; then the mean of the two
    expected = (-(2 + 1 + 0.5) / 3 + 2 * (0.5 + 1) / 2) / 2
    assert constraint(weighted).loss.item() == pytest.approx(expected)


def _model(dtype=torch.float32):
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64))
    return model.eval(), tokenizer


@pytest.mark.parametrize("engine", [LeanRolloutEngine, HFRolloutEngine])
def test_samplers_return_their_own_logprobs_and_bf16_sampling_makes_a_measurable_gap(engine):
    model, tokenizer = _model()
    prompts = [tokenizer.encode("12+3\n"), tokenizer.encode("4+56+7\n")]

    def gap(dtype):
        torch.manual_seed(1)
        out = engine(max_new_tokens=10, temperature=0.7, logprobs=True, dtype=dtype).bind(tokenizer).generate(model, prompts, n=3)
        with torch.no_grad():
            trainer, _ = response_logprobs(model, out.prompt_ids, out.prompt_mask, out.response_ids, out.response_mask, 0.7)
        diff = (out.engine_logprobs - trainer).abs()[out.response_mask]
        return diff.mean().item()

    assert gap(None) < 1e-4  # fp32 sampling: the trainer's own numbers (temperature included)
    assert 1e-4 < gap("bfloat16") < 0.2  # bf16 sampling from fp32 weights: the mismatch TIS corrects
