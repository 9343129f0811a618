"""The trainer forward: sharing each prompt's key/value cache across its group is exact."""

from __future__ import annotations

import pytest
import torch

import archer.forward as forward
from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model
from archer.rollout.hf import left_pad


def _batch(groups=4, size=3, length=7, seed=0):
    torch.manual_seed(seed)
    prompts = [torch.randint(4, 200, (int(torch.randint(3, 9, ())),)).tolist() for _ in range(groups)]
    prompt_ids, prompt_mask = left_pad([p for p in prompts for _ in range(size)], 0)
    response_ids = torch.randint(4, 200, (groups * size, length))
    response_mask = torch.ones_like(response_ids, dtype=torch.bool)
    response_mask[1, 4:] = False
    response_mask[5, 1:] = False
    return prompt_ids, prompt_mask, response_ids, response_mask, torch.arange(groups).repeat_interleave(size)


@pytest.mark.parametrize("length", [1, 7])
def test_shared_prompt_forward_equals_whole_rows_in_values_and_gradients(monkeypatch, length):
    monkeypatch.setattr(forward, "MIN_SAVED_SHARE", 0.0)  # always share
    model = build_tiny_model(build_char_tokenizer(), TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2,
                                                                    intermediate_size=64))
    prompt_ids, prompt_mask, response_ids, response_mask, groups = _batch(length=length)
    results = []
    for group_ids in (None, groups):
        model.zero_grad()
        lp, h = forward.response_logprobs(model, prompt_ids, prompt_mask, response_ids, response_mask, 0.8, group_ids)
        (lp * torch.linspace(0.5, 1.5, lp.numel()).view_as(lp)).sum().backward()
        results.append((lp.detach(), h.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (lp_a, h_a, g_a), (lp_b, h_b, g_b) = results
    torch.testing.assert_close(lp_b, lp_a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_b, h_a, atol=1e-5, rtol=1e-5)
    for name in g_a:
        torch.testing.assert_close(g_b[name], g_a[name], atol=1e-5, rtol=1e-4, msg=name)
    assert (lp_a[1, 4:] == 0).all() and (lp_a[5, 1:] == 0).all()  # padding stays zero


def test_sharing_is_skipped_when_it_saves_little_or_prompts_differ():
    prompt_ids, _, _, _, groups = _batch(groups=4, size=3)
    assert forward._shared_prompts(prompt_ids, groups, length=2) is not None
    assert forward._shared_prompts(prompt_ids, groups, length=10_000) is None  # prompts are a tiny share
    assert forward._shared_prompts(prompt_ids, torch.zeros_like(groups), length=2) is None  # one id, many prompts


def test_right_padded_rows_run_without_a_mask_and_match_each_row_alone():
    """No left padding: the model gets no attention mask and positions that keep counting over
    the right padding (repeated positions would read as packed sequences, for which transformers
    builds a dense mask), and every row's log-probs equal those of the row run alone."""
    model = build_tiny_model(build_char_tokenizer(), TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2,
                                                                    intermediate_size=64))
    torch.manual_seed(0)
    prompt_ids = torch.randint(4, 200, (3, 5))
    prompt_mask = torch.ones_like(prompt_ids, dtype=torch.bool)
    response_ids = torch.randint(4, 200, (3, 6))
    response_mask = torch.arange(6)[None] < torch.tensor([[6], [3], [1]])
    calls = []
    original = model.forward

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    model.forward = spy
    lp, _ = forward.response_logprobs(model, prompt_ids, prompt_mask, response_ids, response_mask)
    assert calls[0]["attention_mask"] is None
    assert torch.equal(calls[0]["position_ids"], torch.arange(11).expand(3, -1))
    for row in range(3):
        n = int(response_mask[row].sum())
        alone, _ = forward.response_logprobs(model, prompt_ids[row:row + 1], prompt_mask[row:row + 1],
                                             response_ids[row:row + 1, :n], response_mask[row:row + 1, :n])
        torch.testing.assert_close(lp[row, :n], alone[0], atol=1e-5, rtol=1e-5)
        assert (lp[row, n:] == 0).all()
    # with left padding the mask is kept
    prompt_mask[1, :2] = False
    calls.clear()
    forward.response_logprobs(model, prompt_ids, prompt_mask, response_ids, response_mask)
    assert calls[0]["attention_mask"] is not None
    assert calls[0]["position_ids"][1, 2:].tolist() == list(range(9))
