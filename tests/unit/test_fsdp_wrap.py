"""trainer=fsdp wraps each decoder layer of the loaded model in its own FSDP unit (config level, CPU)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from lightning.pytorch.strategies import FSDPStrategy
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from archer.config_checks import ConfigError
from archer.train import config_dir, strategy_override

SIZES = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
             num_key_value_heads=1)


@pytest.mark.parametrize("model", [Qwen2ForCausalLM(Qwen2Config(**SIZES)), LlamaForCausalLM(LlamaConfig(**SIZES))],
                         ids=["qwen2", "llama"])
def test_the_fsdp_strategy_wraps_every_decoder_layer(model):
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="train", overrides=["trainer=fsdp"])
    strategy = strategy_override(cfg, model)["strategy"]
    assert isinstance(strategy, FSDPStrategy)
    wrapped = strategy.kwargs["auto_wrap_policy"]._run_policy(model, set(), {})
    layers = list(model.model.layers)
    assert set(wrapped) >= set(layers) and len(layers) == 3
    assert not any(type(m).__name__.endswith(("Attention", "MLP")) for m in wrapped)  # blocks, not their parts


def test_other_strategies_are_left_to_the_config_and_unknown_models_are_named():
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        assert strategy_override(compose(config_name="train", overrides=["trainer=ddp"]), None) == {}
        cfg = compose(config_name="train", overrides=["trainer=fsdp"])
    import torch

    with pytest.raises(ConfigError, match="decoder_layers"):
        strategy_override(cfg, torch.nn.Linear(2, 2))
