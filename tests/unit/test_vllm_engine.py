"""The vLLM engine's pure parts (run without vLLM) and its end-to-end check (GPU + vLLM only)."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
import torch

from archer.config_checks import ConfigError
from archer.models import build_char_tokenizer
from archer.rollout.base import logprob_gap
from archer.rollout.vllm import (
    VLLMRolloutEngine,
    changed_tensors,
    request_batches,
    sampling_kwargs,
    vllm_weight_name,
)

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_weight_names_lose_every_wrapper_prefix():
    assert vllm_weight_name("model.layers.0.self_attn.q_proj.weight") == "model.layers.0.self_attn.q_proj.weight"
    assert vllm_weight_name("_forward_module.policy.model.norm.weight") == "model.norm.weight"
    assert vllm_weight_name("module.policy.lm_head.weight") == "lm_head.weight"
    assert vllm_weight_name("_fsdp_wrapped_module.model.layers.1._fsdp_wrapped_module.mlp.up_proj.weight") == \
        "model.layers.1.mlp.up_proj.weight"
    assert vllm_weight_name("model.layers.2._checkpoint_wrapped_module.mlp.down_proj.weight") == \
        "model.layers.2.mlp.down_proj.weight"


def test_sampling_parameters_map_from_the_common_config():
    kwargs = sampling_kwargs(temperature=0.8, top_p=0.95, top_k=0, max_new_tokens=512, stop_strings=[], n=16, seed=7)
    assert kwargs == {"n": 16, "temperature": 0.8, "top_p": 0.95, "top_k": -1, "max_tokens": 512, "stop": None,
                      "logprobs": 0, "seed": 7, "skip_special_tokens": True}
    assert sampling_kwargs(1.0, 1.0, 20, 8, ["</answer>"], 1, None)["top_k"] == 20
    assert sampling_kwargs(1.0, 1.0, 20, 8, ["</answer>"], 1, None)["stop"] == ["</answer>"]


def test_request_batches_never_split_a_group():
    prompts = [[1]] * 10
    calls = list(request_batches(prompts, n=4, max_sequences=12))
    assert calls == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert list(request_batches(prompts, n=32, max_sequences=8)) == [[i] for i in range(10)]  # one group per call
    assert list(request_batches(prompts, n=1, max_sequences=100)) == [list(range(10))]


def test_only_changed_tensors_are_synced():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model[1].requires_grad_(False)
    versions: dict = {}
    assert [n for n, _ in changed_tensors(model.named_parameters(), versions)] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert changed_tensors(model.named_parameters(), versions) == []
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()  # updates layer 0 in place; layer 1 is frozen
    synced = changed_tensors(model.named_parameters(), versions)
    assert [n for n, _ in synced] == ["0.weight", "0.bias"]
    assert synced[0][1].data_ptr() == model[0].weight.data_ptr()  # no copy: vLLM reads the tensor itself


def test_vllm_outputs_become_a_rollout_batch_with_engine_logprobs():
    engine = object.__new__(VLLMRolloutEngine)  # no vLLM needed for the conversion
    engine.tokenizer = build_char_tokenizer()
    pad = engine.tokenizer.pad_token_id

    def completion(ids, lps, reason):
        return SimpleNamespace(token_ids=ids, text="x" * len(ids), finish_reason=reason,
                               logprobs=[{t: SimpleNamespace(logprob=lp)} for t, lp in zip(ids, lps)])

    outputs = [SimpleNamespace(outputs=[completion([5, 6], [-0.5, -1.0], "stop"), completion([7], [-2.0], "length")]),
               SimpleNamespace(outputs=[completion([8, 9, 10], [-0.1, -0.2, -0.3], "stop"), completion([], [], "stop")])]
    batch = engine._to_batch([[1, 2, 3], [4]], outputs, n=2)
    assert batch.response_ids.tolist() == [[5, 6, pad], [7, pad, pad], [8, 9, 10], [pad, pad, pad]]
    assert batch.response_mask.sum(-1).tolist() == [2, 1, 3, 0]
    assert batch.truncated.tolist() == [False, True, False, False]
    assert batch.group_ids.tolist() == [0, 0, 1, 1]
    assert batch.prompt_mask.sum(-1).tolist() == [3, 3, 1, 1]
    assert torch.allclose(batch.engine_logprobs[0, :2], torch.tensor([-0.5, -1.0]))
    # the gap to the trainer's log-probs: only real tokens count
    trainer = batch.engine_logprobs.clone()
    trainer[0, 0] += 0.6
    assert logprob_gap(batch, trainer) == pytest.approx(0.6 / 6)
    assert batch.select(torch.tensor([2])).engine_logprobs.shape == (1, 3)


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_without_vllm_the_engine_says_how_to_install_it():
    with pytest.raises(ConfigError, match=r'pip install "archer-rlvr\[vllm\]"'):
        VLLMRolloutEngine()


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available()), reason="needs vLLM and CUDA")
def test_vllm_engine_trains_the_tiny_default_with_a_small_logprob_gap(tmp_path):
    from hydra import compose, initialize_config_dir

    from archer.train import config_dir, train

    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="train", overrides=[
            "debug=smoke", "trainer=gpu", "trainer.precision=32-true", "rollout=vllm", "rollout.dtype=float32",
            "rollout.gpu_memory_utilization=0.3", "rollout.enforce_eager=true", "logger=csv", "rl.steps=3"])
    summary = train(cfg, tmp_path)
    assert summary["rl_steps"] == 3
    import csv

    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))))
    gaps = [float(r["rollout/logprob_gap"]) for r in rows if r.get("rollout/logprob_gap")]
    assert gaps and max(gaps) < 0.05, gaps  # same weights in vLLM and the trainer after every sync
