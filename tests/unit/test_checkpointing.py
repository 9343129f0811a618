"""Activation checkpointing changes memory, not numbers: the same log-probs and gradients."""

from __future__ import annotations

import copy

import torch

from archer.forward import activation_checkpointing, enable_activation_checkpointing, response_logprobs
from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model


def _loss_and_grads(model, prompt, prompt_mask, response, response_mask, groups):
    model.train()
    model.zero_grad(set_to_none=True)
    logprobs, _ = response_logprobs(model, prompt, prompt_mask, response, response_mask, 1.0, groups)
    loss = -(logprobs * torch.linspace(0.5, 1.5, logprobs.numel()).view_as(logprobs)).sum()
    loss.backward()
    return logprobs.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_checkpointing_on_and_off_give_the_same_logprobs_and_gradients():
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    plain = build_tiny_model(tokenizer, TinyModelConfig(hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64))
    plain.config.attention_dropout = 0.0
    checkpointed = copy.deepcopy(plain)
    enable_activation_checkpointing(checkpointed)
    assert activation_checkpointing(checkpointed) and not activation_checkpointing(plain)
    # two groups of 3 responses sharing a prompt each (prompt sharing on for the plain model)
    prompt = torch.randint(4, 100, (2, 6)).repeat_interleave(3, dim=0)
    prompt_mask = torch.ones_like(prompt, dtype=torch.bool)
    prompt_mask[3:, :2] = False  # the second prompt is left-padded
    response = torch.randint(4, 100, (6, 9))
    response_mask = torch.arange(9) < torch.tensor([9, 4, 7, 2, 9, 5]).unsqueeze(-1)
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    expected_lp, expected_grads = _loss_and_grads(plain, prompt, prompt_mask, response, response_mask, groups)
    got_lp, got_grads = _loss_and_grads(checkpointed, prompt, prompt_mask, response, response_mask, groups)
    torch.testing.assert_close(got_lp, expected_lp, atol=1e-5, rtol=1e-5)
    assert got_grads.keys() == expected_grads.keys()
    for name in expected_grads:
        torch.testing.assert_close(got_grads[name], expected_grads[name], atol=1e-5, rtol=1e-4)
