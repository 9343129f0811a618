"""LoRA adapters (archer/lora.py, archer/rollout/merged_weights.py): the settings' checks, what
trains, the reference as the base with the adapter disabled, merged weights for export, the lean
sampler and the vLLM sync."""

from __future__ import annotations

import copy
import sys
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from transformers import AutoModelForCausalLM

import archer.rollout.vllm as engine_module
from archer.config_checks import ConfigError
from archer.data import PromptStream
from archer.forward import response_logprobs
from archer.lora import LoraSettings, adapters_disabled, attach_lora, has_lora, merged_state_dict
from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model, save_pretrained
from archer.module import ArcherModule
from archer.rollout.fast_decode import FastDecoder
from archer.rollout.hf import HFRolloutEngine
from archer.rollout.lean import LeanRolloutEngine
from archer.rollout.merged_weights import lora_scalings, merge_lora
from archer.rollout.sampling import sample
from archer.rollout.vllm import VLLMRolloutEngine
from archer.rollout.vllm_weights import changed_tensors, vllm_weight_name
from archer.train import build_components, build_policy, config_dir, lora_settings
from tests import fake_vllm

TINY = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
PROMPTS = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]


def tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_tiny_model(build_char_tokenizer(), TINY).eval()


def lora_policy(r: int = 4, alpha: float = 8.0, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(a tiny policy with a LoRA adapter whose B is random, so the adapter changes the outputs;
    a copy of its base taken before the adapter went on)."""
    policy = tiny(seed)
    base = copy.deepcopy(policy)
    attach_lora(policy, LoraSettings(r=r, alpha=alpha))
    with torch.no_grad():
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return policy.eval(), base


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


IDS = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]])


# ------------------------------------------------------------------ settings

@pytest.mark.parametrize("values, message", [
    ({"r": -1}, r"model\.lora\.r must be an integer >= 0"),
    ({"r": 2.5}, r"model\.lora\.r must be an integer >= 0"),
    ({"r": 4, "alpha": 0}, r"model\.lora\.alpha must be > 0"),
    ({"r": 4, "dropout": 1.0}, r"model\.lora\.dropout must be in \[0, 1\)"),
    ({"r": 4, "target_modules": []}, r"model\.lora\.target_modules must be a non-empty list"),
    ({"r": 4, "rank": 8}, r"model\.lora has unknown keys \['rank'\]"),
])
def test_bad_settings_name_their_key(values, message):
    with pytest.raises(ConfigError, match=message):
        LoraSettings.from_config(values)


def test_r_zero_is_off_and_touches_nothing():
    policy = tiny()
    assert attach_lora(policy, LoraSettings.from_config({"r": 0, "alpha": -5})) is policy  # off: nothing checked
    assert not has_lora(policy) and all(p.requires_grad for p in policy.parameters())


def test_missing_target_modules_are_named():
    with pytest.raises(ConfigError, match=r"\['w_q', 'c_attn'\] name no Linear layer.*q_proj"):
        attach_lora(tiny(), LoraSettings(r=4, target_modules=("q_proj", "w_q", "c_attn")))


def test_a_tied_output_head_is_refused():
    with pytest.raises(ConfigError, match=r"lm_head shares its weight"):
        attach_lora(tiny(), LoraSettings(r=4, target_modules=("q_proj", "lm_head")))


def test_without_peft_the_error_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError
    with pytest.raises(ConfigError, match=r'pip install "archer-rlvr\[lora\]"'):
        attach_lora(tiny(), LoraSettings(r=4))


def test_config_files_default_to_off_with_the_llama_qwen_projections():
    for name in ("tiny", "hf"):
        cfg = compose_train([f"model={name}", "model.path=/x"] if name == "hf" else [])
        settings = LoraSettings.from_config(cfg.model.lora)
        assert not settings.enabled
        assert settings.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


# ------------------------------------------------------------------ what trains, the reference

def test_only_adapter_weights_train_and_stay_float32_over_a_bf16_base():
    policy = tiny().to(torch.bfloat16)
    attach_lora(policy, LoraSettings(r=4))
    trainable = {n: p for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    # every default target got an adapter in every layer: 7 projections x 2 layers x (A, B)
    assert len(trainable) == 7 * TINY.num_layers * 2
    policy(input_ids=IDS).logits.float().logsumexp(-1).mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in trainable.values())
    assert all(p.grad is None for n, p in policy.named_parameters() if n not in trainable)


def test_a_fresh_adapter_starts_as_the_base():
    policy = tiny()
    base = copy.deepcopy(policy)
    attach_lora(policy, LoraSettings(r=4))
    assert torch.equal(logits(policy.eval(), IDS), logits(base, IDS))  # B = 0


def test_disabled_adapters_compute_the_base_and_come_back_on():
    policy, base = lora_policy()
    trained = logits(policy, IDS)
    assert not torch.allclose(trained, logits(base, IDS), atol=1e-3)  # the adapter matters
    with adapters_disabled(policy):
        assert torch.allclose(logits(policy, IDS), logits(base, IDS), atol=1e-6)
    assert torch.equal(logits(policy, IDS), trained)
    assert all(p.requires_grad for n, p in policy.named_parameters() if ".lora_" in n)


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        return compose(config_name="train", overrides=overrides)


def test_the_module_reference_is_the_base_inside_the_policy():
    """ArcherModule with a KL constraint and a LoRA policy: no reference copy, and its reference
    log-probs are the base model's."""
    cfg = compose_train(["model.tiny.hidden_size=32", "model.tiny.num_layers=2", "model.tiny.num_heads=2",
                         "model.tiny.intermediate_size=64", "model.lora.r=4", "constraint=dual_token",
                         "rollout.max_new_tokens=6", "data.source.train_size=8", "data.source.heldout_size=2"])
    c = build_components(cfg)
    policy, tokenizer, _ = build_policy(cfg)
    base = copy.deepcopy(policy).eval()
    attach_lora(policy, lora_settings(cfg, policy))
    with torch.no_grad():
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    module = ArcherModule(policy, tokenizer, c.template, PromptStream(c.data.train, 2, 0), c.rollout.bind(tokenizer),
                          c.verifier, c.classifier, c.constraint, c.advantage, c.schedule, instantiate(cfg.optimizer))
    assert c.constraint.needs_reference and module.reference is None and module.reference_is_base
    rollout = c.rollout.generate(policy, PROMPTS, n=2)
    reference = module._reference_logprobs(SimpleNamespace(rollout=rollout))
    expected, _ = response_logprobs(base, rollout.prompt_ids, rollout.prompt_mask, rollout.response_ids,
                                    rollout.response_mask, c.rollout.temperature)
    assert torch.allclose(reference, expected, atol=1e-5)
    current, _ = response_logprobs(policy, rollout.prompt_ids, rollout.prompt_mask, rollout.response_ids,
                                   rollout.response_mask, c.rollout.temperature)
    assert not torch.allclose(reference, current, atol=1e-3)  # the adapter was on again after it
    assert [p for p in module.configure_optimizers().param_groups[0]["params"]] == \
        [p for n, p in policy.named_parameters() if ".lora_" in n]


# ------------------------------------------------------------------ merged weights

def test_merged_weights_are_base_plus_scaled_b_times_a():
    policy, _ = lora_policy(r=4, alpha=8.0)
    q = policy.model.layers[0].self_attn.q_proj
    merged = merged_state_dict(policy)
    expected = q.base_layer.weight + 2.0 * q.lora_B["default"].weight @ q.lora_A["default"].weight  # alpha / r = 2
    assert torch.allclose(merged["model.layers.0.self_attn.q_proj.weight"], expected, atol=1e-6)
    assert torch.equal(merged["model.layers.0.self_attn.q_proj.bias"], q.base_layer.bias)
    assert not any("lora_" in n or "base_layer" in n for n in merged)


def test_a_saved_lora_policy_is_a_plain_model_with_the_policys_logits(tmp_path):
    policy, _ = lora_policy()
    save_pretrained(policy, build_char_tokenizer(), tmp_path)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert not has_lora(plain)
    assert torch.allclose(logits(plain, IDS), logits(policy, IDS), atol=1e-5)


# ------------------------------------------------------------------ the lean sampler

def test_the_fused_decoder_reads_the_adapter():
    """One fused step equals the LoRA policy's own forward (reading base_layer alone would not)."""
    policy, _ = lora_policy()
    assert FastDecoder.supports(policy)
    ids = torch.tensor([[5, 6, 7, 8]])
    out = policy(input_ids=ids[:, :3], use_cache=True)
    from archer.forward import output_cache

    fast = FastDecoder(policy, output_cache(out), 1, 8, torch.float32)
    step = fast.step(ids[:, 3], torch.tensor([3]), torch.ones(1, 8, dtype=torch.bool))
    assert torch.allclose(step, logits(policy, ids)[:, -1], atol=1e-4)


def test_lean_sampling_from_a_lora_policy_equals_sampling_the_merged_model(tmp_path):
    policy, base = lora_policy()
    save_pretrained(policy, build_char_tokenizer(), tmp_path)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids, mask = torch.tensor([[0, 5, 6, 7], [8, 9, 10, 11]]), torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]).bool()
    drawn = []
    for model in (policy, merged, base):
        torch.manual_seed(3)
        drawn.append(sample(model, ids, mask, 24, [2], 0, temperature=1.0, repeats=4))
    assert torch.equal(drawn[0], drawn[1])
    assert not torch.equal(drawn[0], drawn[2])  # the adapter changes what is sampled


@pytest.mark.parametrize("engine_class", [LeanRolloutEngine, HFRolloutEngine])
def test_the_engines_sample_the_adapter(engine_class):
    policy, _ = lora_policy()
    engine = engine_class(max_new_tokens=8).bind(build_char_tokenizer())
    merged = tiny()
    merged.load_state_dict(merged_state_dict(policy))
    torch.manual_seed(1)
    a = engine.generate(policy, PROMPTS, n=3)
    torch.manual_seed(1)
    b = engine.generate(merged, PROMPTS, n=3)
    assert torch.equal(a.response_ids, b.response_ids)


# ------------------------------------------------------------------ the vLLM sync

def test_vllm_gets_merged_tensors_under_the_base_names():
    policy, _ = lora_policy()
    scalings = lora_scalings(policy)
    versions: dict[str, int] = {}
    first = dict(changed_tensors(policy.named_parameters(), versions, scalings))
    plain = merged_state_dict(policy)
    assert set(first) == set(dict(tiny().named_parameters()))  # exactly the plain model's names
    assert all(torch.allclose(first[n], plain[n]) for n in first)
    assert changed_tensors(policy.named_parameters(), versions, scalings) == []
    with torch.no_grad():  # an optimizer step on one adapter
        policy.model.layers[1].mlp.up_proj.lora_A["default"].weight.add_(0.1)
    again = changed_tensors(policy.named_parameters(), versions, scalings)
    assert [n for n, _ in again] == ["model.layers.1.mlp.up_proj.weight"]
    assert torch.allclose(again[0][1], merged_state_dict(policy)["model.layers.1.mlp.up_proj.weight"])


def test_peft_model_names_map_to_hugging_face_names():
    name = "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"
    a, b = torch.randn(2, 3), torch.randn(3, 2)
    named = [(name, torch.zeros(3, 3)), (name.replace("base_layer", "lora_A.default"), a),
             (name.replace("base_layer", "lora_B.default"), b)]
    (merged_name, tensor), = merge_lora(named, {"base_model.model.model.layers.0.self_attn.q_proj": {"default": 0.5}})
    assert vllm_weight_name(merged_name) == "model.layers.0.self_attn.q_proj.weight"
    assert torch.allclose(tensor, 0.5 * b @ a)


@pytest.fixture
def vllm(monkeypatch):
    fake = fake_vllm.install(monkeypatch)
    monkeypatch.setattr(engine_module, "_free_cached_memory", lambda: None)
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_NTASKS", "SLURM_LOCALID"):
        monkeypatch.delenv(key, raising=False)
    return fake


def holds_merged(llm, policy) -> bool:
    plain = merged_state_dict(policy)
    return all(torch.allclose(p, plain[name], atol=1e-6) for name, p in llm.model.named_parameters())


@pytest.mark.parametrize("from_files", [False, True])
def test_the_vllm_engine_holds_the_merged_policy(vllm, tmp_path, from_files):
    policy, base = lora_policy()
    if from_files:  # vLLM reads the base model's folder (model.path), then gets the policy in memory
        save_pretrained(base, build_char_tokenizer(), tmp_path)
    engine = VLLMRolloutEngine(model_path=str(tmp_path) if from_files else None, max_new_tokens=4,
                               gpu_memory_utilization=0.3, dtype="float32").bind(build_char_tokenizer())
    engine.sync_weights(policy)
    llm = vllm.INSTANCES[0]
    assert holds_merged(llm, policy)
    with torch.no_grad():
        policy.model.layers[0].self_attn.v_proj.lora_B["default"].weight.add_(0.2)
    assert engine.sync_weights(policy) == 1
    assert holds_merged(llm, policy) and llm.violations == []
