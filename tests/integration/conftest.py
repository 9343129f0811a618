"""Fixtures: a tiny saved model and a helper that runs archer-train's `train` in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model, save_pretrained
from archer.train import config_dir, train

# Small and fast: every integration run uses these on top of its own overrides.
FAST = [
    "model.tiny.hidden_size=32", "model.tiny.num_layers=2", "model.tiny.num_heads=2",
    "model.tiny.intermediate_size=64", "model.warmup.steps=0",
    "data.source.train_size=64", "data.source.heldout_size=8",
    "rl.steps=2", "rl.prompts_per_step=4", "rl.samples_per_prompt=4", "rl.mini_batch_prompts=2",
    "rl.micro_batch_size=8", "rollout.max_new_tokens=8", "heldout.max_problems=0",
    "verifier._target_=tests.doubles.ParityVerifier", "logger=csv", "checkpoint.every_n_steps=0",
]


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        return compose(config_name="train", overrides=overrides)


@pytest.fixture
def run(tmp_path):
    """run(overrides, name) -> (summary, run_dir): the real training entry point."""

    def _run(overrides: list[str], name: str = "run", base: list[str] = FAST):
        run_dir = tmp_path / name
        summary = train(compose_train(base + overrides), run_dir)
        return summary, run_dir

    return _run


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny policy and tokenizer saved in Hugging Face format."""
    folder = tmp_path_factory.mktemp("tiny_model")
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64))
    return save_pretrained(model, tokenizer, folder)
