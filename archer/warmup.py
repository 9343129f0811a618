"""Supervised warm-up on the task's gold responses before RL (`model.warmup`).

RL needs a policy that sometimes succeeds. The embedded default starts from random weights, so
it first imitates gold solutions for a few hundred steps, deliberately stopped early: the model
then knows the answer format but makes arithmetic slips, which is exactly the regime where
RLVR helps. A weak pretrained model (SmolLM2-135M on SVAMP) gets the same short cold start: a
few dozen steps on worked answers teach it the format before RL sharpens which answer it gives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from archer.config_checks import ConfigError
from archer.schedules import warmup_cosine
from archer.types import Sample


@dataclass(frozen=True)
class WarmupConfig:
    """Args:
    steps: supervised steps (0 disables the warm-up).
    batch_size: sequences per step.
    lr: AdamW learning rate.
    """

    steps: int = 0
    batch_size: int = 64
    lr: float = 3e-3

    def __post_init__(self) -> None:
        if self.steps > 0 and (self.batch_size < 1 or self.lr <= 0):
            raise ConfigError(f"model.warmup.steps={self.steps} needs model.warmup.batch_size >= 1 and "
                              f"model.warmup.lr > 0 (got {self.batch_size} and {self.lr})")


def supervised_warmup(policy, tokenizer, template, samples: list[Sample], config: WarmupConfig, seed: int = 0,
                      bf16: bool = False) -> list[float]:
    """Cross-entropy on the response tokens of each sample's demonstration + EOS (the
    `info["demonstration"]` when there is one, else `info["solution"]`; samples with neither are
    skipped); returns losses. `bf16`: under bf16 autocast, as the RL update with
    `trainer.precision=bf16-mixed` (the weights stay in their own dtype)."""
    if config.steps <= 0:
        return []
    samples = [s for s in samples if "solution" in s.info]
    if not samples:
        raise ConfigError("model.warmup.steps > 0 needs training samples with info['solution'] (the synthetic "
                          "and Countdown tasks and SVAMP have them); set model.warmup.steps=0")
    rng = random.Random(f"{seed}/warmup")
    device = next(policy.parameters()).device
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=0.0, betas=(0.9, 0.98))
    # Short linear warm-up, then cosine decay: the usual recipe, and it lands the tiny model
    # in a low-loss basin within a fixed step budget far more reliably than a constant LR.
    scheduler = warmup_cosine(optimizer, warmup_steps=max(1, config.steps // 20), total_steps=config.steps, min_ratio=0.05)
    policy.train()
    losses = []
    for _ in range(config.steps):
        batch = rng.sample(samples, min(config.batch_size, len(samples)))
        ids, labels, mask = _encode(batch, tokenizer, template)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = policy(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(out.loss.item())
    return losses


def _encode(batch: list[Sample], tokenizer, template) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded prompt+response ids, labels (-100 on prompt and padding) and attention mask.
    The mask comes from the lengths, not from `ids != pad`: chat tokenizers often pad with their
    end-of-turn token (SmolLM2: `<|im_end|>`), which the prompt itself contains."""
    rows, label_rows = [], []
    for sample in batch:
        prompt = template.encode(sample, tokenizer)
        text = sample.info.get("demonstration", sample.info["solution"])
        response = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
        rows.append(prompt + response)
        label_rows.append([-100] * len(prompt) + response)
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, lab) in enumerate(zip(rows, label_rows)):
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(row)] = 1
    return ids, labels, mask
