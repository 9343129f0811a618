"""The vLLM engine: its pure parts, its life cycle against the CPU fake of vLLM
(tests/fake_vllm.py, which enforces vLLM's sleep/wake and weight-loading rules), and its
end-to-end checks on a GPU with the real vLLM (marked `gpu`)."""

from __future__ import annotations

import importlib.util
import os
import random
from types import SimpleNamespace

import pytest
import torch

import archer.rollout.vllm as engine_module
from archer.config_checks import ConfigError
from archer.forward import response_logprobs
from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model
from archer.rollout.base import logprob_gap
from archer.rollout.vllm import (
    VLLMRolloutEngine,
    call_seed,
    llm_options,
    request_batches,
    request_seeds,
    sampling_kwargs,
)
from archer.rollout.vllm_launch import check_same_world, check_vllm_version, rank_environment
from archer.rollout.vllm_weights import changed_tensors, full_parameters, vllm_weight_name
from tests import fake_vllm

HAS_VLLM = importlib.util.find_spec("vllm") is not None
TINY = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
PROMPTS = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]


# ------------------------------------------------------------------ pure helpers

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
                      "include_stop_str_in_output": True, "logprobs": 0, "seed": 7, "skip_special_tokens": True}
    assert sampling_kwargs(1.0, 1.0, 20, 8, ["</answer>"], 1, None)["top_k"] == 20
    assert sampling_kwargs(1.0, 1.0, 20, 8, ["</answer>"], 1, None)["stop"] == ["</answer>"]
    with pytest.raises(ConfigError, match=r"heldout\.temperature.*above 2"):
        sampling_kwargs(2.5, 1.0, 0, 8, [], 1, None)  # an evaluation view's temperature is checked too


def test_llm_runs_in_process_on_this_rank_with_processed_logprobs():
    options = llm_options("/m", dtype="float32", gpu_memory_utilization=0.3, max_num_seqs=8, max_model_len=None,
                          enforce_eager=True, seed=3, sleep_mode=True)
    assert options["distributed_executor_backend"] == "external_launcher"
    assert options["logprobs_mode"] == "processed_logprobs"
    assert options["enable_sleep_mode"] is True and options["tensor_parallel_size"] == 1
    assert "max_model_len" not in options  # None: the model's own
    assert llm_options("/m", dtype="bfloat16", gpu_memory_utilization=0.5, max_num_seqs=8, max_model_len=4096,
                       enforce_eager=False, seed=0, sleep_mode=False)["max_model_len"] == 4096


def test_request_batches_never_split_a_group():
    prompts = [[1]] * 10
    calls = list(request_batches(prompts, n=4, max_sequences=12))
    assert calls == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert list(request_batches(prompts, n=32, max_sequences=8)) == [[i] for i in range(10)]  # one group per call
    assert list(request_batches(prompts, n=1, max_sequences=100)) == [list(range(10))]


def test_request_seeds_follow_the_prompt_not_its_batch():
    a, b, c = [1, 2], [3], [4, 5, 6]
    first, second = request_seeds(11, [a, b, c]), request_seeds(11, [c, a])
    assert second == [first[2], first[0]]  # order and company do not matter
    assert request_seeds(12, [a])[0] != first[0]  # another step, other samples
    twice = request_seeds(11, [a, b, a])
    assert twice[0] == first[0] and twice[2] != twice[0]  # an equal prompt in the batch still draws afresh


def test_no_two_prompts_share_a_seed_stream():
    rng = random.Random(0)
    prompts = [[rng.randrange(200) for _ in range(rng.randrange(1, 12))] for _ in range(2000)]
    n = 16  # vLLM seeds sample i of a request with seed + i
    seeds = request_seeds(5, prompts)
    streams = [set(range(s, s + n)) for s in seeds]
    used = set()
    for stream in streams:
        assert not stream & used
        used |= stream
    assert max(seeds) + n < 2**63  # any torch generator takes them


def test_unseeded_calls_differ_by_rank_and_call():
    assert len({call_seed(0, rank, call) for rank in range(4) for call in range(1, 4)}) == 12
    assert call_seed(0, 1, 2) == call_seed(0, 1, 2)


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


def test_one_process_gets_rank_zero_and_a_free_port():
    env = rank_environment({}, None, free_port=lambda: 41234)
    assert env == {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "41234"}


def test_torchrun_ranks_keep_their_variables_and_gpu():
    torchrun = {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    assert rank_environment(torchrun, None, free_port=lambda: 1) == torchrun
    # a process group that exists already (Lightning made it) gives rank and world; no rendezvous needed
    assert rank_environment({"LOCAL_RANK": "3"}, (7, 8), free_port=lambda: 1) == \
        {"RANK": "7", "LOCAL_RANK": "3", "WORLD_SIZE": "8"}


@pytest.mark.parametrize("environ, missing", [
    ({"WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "a", "MASTER_PORT": "1"}, "RANK"),  # Lightning's launcher
    ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "a", "MASTER_PORT": "1"}, "LOCAL_RANK"),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}, "MASTER_ADDR and MASTER_PORT"),
    ({"SLURM_NTASKS": "16"}, "WORLD_SIZE"),
])
def test_several_processes_without_the_launcher_variables_are_refused(environ, missing):
    with pytest.raises(ConfigError, match=rf"{missing}.*torchrun"):
        rank_environment(environ, None, free_port=lambda: 1)


def test_an_engine_refuses_to_go_on_in_another_world():
    check_same_world(4, 4)
    with pytest.raises(ConfigError, match=r"one of 1 process.*now has 8.*torchrun"):
        check_same_world(1, 8)


def test_vllm_versions_outside_the_read_range():
    with pytest.raises(ConfigError, match=r"vLLM >= 0\.10\.2.*found 0\.9\.2"):
        check_vllm_version("0.9.2")
    assert check_vllm_version("0.10.2") is None and check_vllm_version("0.33.1") is None
    assert "newer" in check_vllm_version("0.40.0")


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


# ------------------------------------------------------------------ gathering shards

class FakeFSDP(torch.nn.Module):
    """Stands for FSDP1: wraps a module as `_fsdp_wrapped_module`; summoning records its call."""

    summoned: list = []

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self._fsdp_wrapped_module = module

    @staticmethod
    def summon_full_params(unit, writeback=True, recurse=True):
        import contextlib

        FakeFSDP.summoned.append((unit, writeback, recurse))
        return contextlib.nullcontext()


def test_fsdp1_is_summoned_on_the_wrapped_root_and_names_lose_its_prefixes():
    FakeFSDP.summoned = []
    policy = torch.nn.Module()
    policy.embed = torch.nn.Embedding(4, 2)
    policy.layers = torch.nn.ModuleList([FakeFSDP(torch.nn.Linear(2, 2)) for _ in range(2)])
    root = FakeFSDP(torch.nn.ModuleDict({"policy": policy, "reference": torch.nn.Linear(2, 2)}))  # Lightning's wrap
    with full_parameters(policy, root, classes=(FakeFSDP,)) as (named, gathered):
        names = [vllm_weight_name(n) for n, _ in named]
    assert FakeFSDP.summoned == [(root, False, True)]  # the outermost unit, read-only, everything under it
    assert gathered and names == ["embed.weight", "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    FakeFSDP.summoned = []
    with full_parameters(policy, None, classes=(FakeFSDP,)) as (_, gathered):
        pass  # without the root only the layers' units are found: the embedding's shard would be missed
    assert [unit for unit, *_ in FakeFSDP.summoned] == list(policy.layers)


def test_dtensor_parameters_come_back_whole():
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    if dist.is_initialized():
        pytest.skip("a process group exists already")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        layer = torch.nn.Linear(4, 2)
        whole = layer.weight.detach().clone()
        layer.weight = torch.nn.Parameter(distribute_tensor(whole, init_device_mesh("cpu", (1,)), [Shard(0)]))
        with full_parameters(layer, None) as (named, gathered):
            assert gathered and type(named[0][1]) is torch.Tensor
            assert torch.equal(named[0][1], whole)
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------ the engine against the fake vLLM

@pytest.fixture
def vllm(monkeypatch):
    """The fake vLLM, with `torch.cuda.empty_cache` calls entered in the LLM's call log, and a
    single-process environment."""
    fake = fake_vllm.install(monkeypatch)
    monkeypatch.setattr(engine_module, "_free_cached_memory", lambda: fake.INSTANCES[-1].log.append("empty_cache"))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_NTASKS", "SLURM_LOCALID"):
        monkeypatch.delenv(key, raising=False)
    return fake


@pytest.fixture
def policy():
    torch.manual_seed(0)
    return build_tiny_model(build_char_tokenizer(), TINY)


def make_engine(**options) -> VLLMRolloutEngine:
    options = {"max_new_tokens": 4, "gpu_memory_utilization": 0.3, "dtype": "float32", **options}
    return VLLMRolloutEngine(**options).bind(build_char_tokenizer())


def train_a_little(policy: torch.nn.Module, batch) -> None:
    """One optimizer step on the sampled responses (any loss moves every weight)."""
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    device = next(policy.parameters()).device
    logprobs, _ = response_logprobs(policy, *(t.to(device) for t in (batch.prompt_ids, batch.prompt_mask,
                                                                      batch.response_ids, batch.response_mask)))
    (-logprobs.sum() - 1e-3 * sum(p.sum() for p in policy.parameters())).backward()
    optimizer.step()


def same_weights(llm, policy) -> bool:
    mine = dict(policy.named_parameters())
    return all(torch.equal(p, mine[name]) for name, p in llm.model.named_parameters())


def test_three_rl_steps_follow_the_staged_sleep_order_and_sync_every_weight(vllm, policy):
    engine = make_engine()
    for step in range(3):
        batch = engine.generate(policy, PROMPTS, n=2, seed=step)
        train_a_little(policy, batch)
        assert engine.sync_weights(policy) == len(list(policy.parameters()))
        assert same_weights(vllm.INSTANCES[0], policy)
    llm = vllm.INSTANCES[0]
    rollout = ["empty_cache", "wake_up(kv_cache)", "generate", "sleep(1)"]  # after a sync only the KV cache sleeps
    sync = ["empty_cache", "wake_up(weights)", "load_weights", "reset_prefix_cache"]
    assert llm.log == ["LLM", "generate", "sleep(1)", *sync, *rollout, *sync, *rollout, *sync]
    assert llm.violations == [] and llm.warnings == []
    assert engine.sync_weights(policy) == 0  # nothing changed: no wake, no push
    assert llm.log[-1] == "reset_prefix_cache" and llm.sleeping_tags == {"kv_cache"}
    engine.generate(policy, PROMPTS, n=1, seed=9)
    assert llm.log[-4:] == rollout and llm.violations == []


def test_every_request_carries_its_own_seed_and_the_vllm_settings(vllm, policy):
    engine = make_engine(stop_strings=["</answer>"], temperature=0.7)
    first = engine.generate(policy, PROMPTS, n=2, seed=42)
    llm = vllm.INSTANCES[0]
    params = [p for _, p in llm.requests]
    assert [p.seed for p in params] == request_seeds(42, PROMPTS) and len(set(p.seed for p in params)) == 3
    assert all(p.include_stop_str_in_output and p.logprobs == 0 and p.n == 2 and p.temperature == 0.7 for p in params)
    assert llm.kwargs["logprobs_mode"] == "processed_logprobs"
    assert llm.kwargs["distributed_executor_backend"] == "external_launcher"
    # the same prompt draws the same samples in another batch, in another place
    again = engine.generate(policy, [PROMPTS[2], [20, 21]], n=2, seed=42)
    assert again.texts[:2] == first.texts[4:6]
    assert torch.equal(again.response_ids[:2, : first.response_ids.shape[1]],
                       first.response_ids[4:6, : again.response_ids.shape[1]])


def test_unseeded_calls_draw_new_seeds_every_call(vllm, policy):
    engine = make_engine()
    engine.generate(policy, PROMPTS[:1])
    engine.generate(policy, PROMPTS[:1])
    seeds = [p.seed for _, p in vllm.INSTANCES[0].requests]
    assert seeds[0] != seeds[1] and seeds[0] == request_seeds(call_seed(0, 0, 1), PROMPTS[:1])[0]


@pytest.mark.parametrize("temperature", [1.0, 0.8])
def test_engine_logprobs_equal_the_trainers_at_any_temperature(vllm, policy, temperature):
    engine = make_engine(temperature=temperature, max_new_tokens=6)
    batch = engine.generate(policy, PROMPTS, n=2, seed=1)
    with torch.no_grad():
        trainer, _ = response_logprobs(policy, batch.prompt_ids, batch.prompt_mask, batch.response_ids,
                                       batch.response_mask, temperature)
    assert logprob_gap(batch, trainer) < 1e-4
    # vLLM's default (raw log-probs, before temperature) agrees with the trainer at temperature 1 only
    raw_engine = make_engine(temperature=temperature, max_new_tokens=6)
    raw_engine.sync_weights(policy)  # starts it
    vllm.INSTANCES[-1].logprobs_mode = "raw_logprobs"
    raw = raw_engine.generate(policy, PROMPTS, n=2, seed=1)
    with torch.no_grad():
        trainer, _ = response_logprobs(policy, raw.prompt_ids, raw.prompt_mask, raw.response_ids, raw.response_mask,
                                       temperature)
    assert (logprob_gap(raw, trainer) > 0.01) == (temperature != 1.0)


def test_stop_strings_stay_in_the_text(vllm, policy):
    stops = [chr(c) for c in range(33, 127)]  # any printable character ends a response
    batch = make_engine(stop_strings=stops, max_new_tokens=8, temperature=2.0).generate(policy, PROMPTS, n=4, seed=3)
    ended = [i for i, text in enumerate(batch.texts) if text and text[-1] in stops]
    assert ended, batch.texts  # the matched stop string ends the text, as the HF engine's
    assert not batch.truncated[ended].any()
    assert all(not any(c in stops for c in batch.texts[i][:-1]) for i in ended)  # cut right after it


def test_without_sleep_the_sync_still_resets_the_prefix_cache(vllm, policy):
    engine = make_engine(sleep_between_steps=False)
    batch = engine.generate(policy, PROMPTS, n=2, seed=0)
    train_a_little(policy, batch)
    assert engine.sync_weights(policy) > 0
    engine.generate(policy, PROMPTS, n=2, seed=1)
    llm = vllm.INSTANCES[0]
    assert llm.log == ["LLM", "generate", "load_weights", "reset_prefix_cache", "generate"]
    assert llm.kwargs["enable_sleep_mode"] is False and same_weights(llm, policy)


def test_an_engine_started_from_files_is_given_the_policy_in_memory(vllm, policy, tmp_path):
    from archer.models import save_pretrained

    save_pretrained(policy, build_char_tokenizer(), tmp_path)
    with torch.no_grad():
        policy.model.norm.weight.add_(1.0)  # e.g. a resumed run: the checkpoint differs from the files
    engine = make_engine(model_path=str(tmp_path))
    assert engine.sync_weights(policy) == len(list(policy.parameters()))  # the engine starts here: a full push
    llm = vllm.INSTANCES[0]
    assert llm.kwargs["model"] == str(tmp_path) and same_weights(llm, policy)
    assert llm.log == ["LLM", "load_weights", "reset_prefix_cache"]


def test_the_evaluation_view_shares_the_engine(vllm, policy):
    engine = make_engine()
    view = engine.with_sampling(temperature=0.6)
    view.generate(policy, PROMPTS, n=1, seed=0)
    engine.generate(policy, PROMPTS, n=1, seed=0)
    assert len(vllm.INSTANCES) == 1 and engine.temperature == 1.0
    assert [p.temperature for _, p in vllm.INSTANCES[0].requests] == [0.6] * 3 + [1.0] * 3
    assert vllm.INSTANCES[0].violations == []


def test_each_rank_builds_its_engine_on_its_own_gpu(vllm, policy, monkeypatch):
    joined = []
    monkeypatch.setattr(engine_module, "join_process_group", joined.append)
    torchrun = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "10.1.1.1", "MASTER_PORT": "29500"}
    for key, value in torchrun.items():
        monkeypatch.setenv(key, value)
    engine = make_engine()
    engine.generate(policy, PROMPTS, n=1, seed=0)
    llm = vllm.INSTANCES[0]
    assert llm.device == "cuda:1" and llm.rank == 3
    assert llm.environment == {**torchrun, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    assert joined == [torchrun]  # the process group is created from torchrun's variables before vLLM
    monkeypatch.setenv("WORLD_SIZE", "8")
    with pytest.raises(ConfigError, match="one of 4"):
        engine.generate(policy, PROMPTS, n=1, seed=1)


def test_one_process_sees_its_environment_unchanged_after_the_start(vllm, policy):
    make_engine().generate(policy, PROMPTS, n=1, seed=0)
    seen = vllm.INSTANCES[0].environment
    assert seen["RANK"] == "0" and seen["LOCAL_RANK"] == "0" and seen["WORLD_SIZE"] == "1" and seen["MASTER_PORT"]
    assert not {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"} & set(os.environ)


def test_a_shard_never_reaches_vllm(vllm, policy):
    engine = make_engine()
    engine.generate(policy, PROMPTS, n=1, seed=0)
    with torch.no_grad():
        policy.model.norm.weight.data = policy.model.norm.weight.data[:5].clone()  # what an ungathered shard looks like
        policy.model.norm.weight.add_(0.1)  # ... after an optimizer step
    with pytest.raises(RuntimeError, match=r"model\.norm\.weight has shape \(5,\), not its full \(32,\)"):
        engine.sync_weights(policy)
    assert "load_weights" not in vllm.INSTANCES[0].log


def test_bad_settings_name_their_key(vllm):
    with pytest.raises(ConfigError, match=r"rollout\.temperature=2\.5.*above 2"):
        make_engine(temperature=2.5)
    with pytest.raises(ConfigError, match=r"rollout\.tensor_parallel_size=2.*rollout\.tensor_parallel_size=1"):
        make_engine(tensor_parallel_size=2)
    with pytest.raises(ConfigError, match=r"rollout\.gpu_memory_utilization"):
        make_engine(gpu_memory_utilization=1.5)


# ------------------------------------------------------------------ the real vLLM on a GPU

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
    assert len(gaps) == 3 and max(gaps) < 0.05, gaps  # same weights in vLLM and the trainer after every sync


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available()), reason="needs vLLM and CUDA")
def test_vllm_holds_the_policys_weights_after_a_sync():
    from archer.rollout.vllm_weights import driver_model

    torch.manual_seed(0)  # head size 32: one every vLLM attention backend takes
    policy = build_tiny_model(build_char_tokenizer(), TinyModelConfig(128, 2, 4, 256)).cuda()
    engine = make_engine(enforce_eager=True)
    batch = engine.generate(policy, PROMPTS, n=2, seed=0)
    assert engine._s.cycle.asleep == {"weights", "kv_cache"}
    train_a_little(policy, batch)
    assert engine.sync_weights(policy) > 0
    model = dict(driver_model(engine._s.llm).named_parameters())
    torch.testing.assert_close(model["model.norm.weight"].float(), policy.model.norm.weight.detach())
    embed = policy.model.embed_tokens.weight.detach()
    torch.testing.assert_close(model["model.embed_tokens.weight"][: embed.shape[0]].float(), embed)
    again = engine.generate(policy, PROMPTS, n=2, seed=1)
    with torch.no_grad():
        trainer, _ = response_logprobs(policy, again.prompt_ids.cuda(), again.prompt_mask.cuda(),
                                       again.response_ids.cuda(), again.response_mask.cuda())
    assert logprob_gap(again, trainer) < 0.05
