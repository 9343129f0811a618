"""Metric reductions, gradient clipping under FSDP, and each rank's own device (CPU-testable parts)."""

from __future__ import annotations

import pytest
import torch

from archer.distributed import Collectives, accumulate, finish, reduce_across_ranks, reduction


def test_each_metric_has_its_reduction():
    assert reduction("train/generated_tokens") == "sum" and reduction("reward/errors") == "sum"
    assert reduction("train/response_length_max") == "max" and reduction("loss/ratio_max_high") == "max"
    assert reduction("time/rollout") == "max" and reduction("train/reward") == "mean"
    assert reduction("loss/policy") == "partial"


def test_means_weigh_by_what_they_average_and_an_empty_class_is_no_value():
    totals: dict = {}
    # micro-batch 1: 3 high tokens with clipfrac 1.0; micro-batch 2: 1 high token with 0.0, and no low tokens
    accumulate(totals, {"loss/clipfrac_high": torch.tensor(1.0), "loss/clipfrac_high@weight": torch.tensor(3.0),
                        "loss/clipfrac_low": torch.tensor(0.0), "loss/clipfrac_low@weight": torch.tensor(0.0),
                        "loss/ratio_max": torch.tensor(1.5), "train/generated_tokens": 10.0})
    accumulate(totals, {"loss/clipfrac_high": torch.tensor(0.0), "loss/clipfrac_high@weight": torch.tensor(1.0),
                        "loss/ratio_max": torch.tensor(2.5), "train/generated_tokens": 5.0})
    out = finish(totals)
    assert out["loss/clipfrac_high"] == pytest.approx(0.75) and out["loss/clipfrac_high@weight"] == 4.0
    assert "loss/clipfrac_low" not in out  # not 0: there were no low-entropy tokens
    assert out["loss/ratio_max"] == 2.5 and out["train/generated_tokens"] == 15.0


class _TwoRanks:
    """Collectives of rank 0 when rank 1 holds `other` (what all-reduce would combine)."""

    def __init__(self, other: dict):
        self.other = other

    def collectives(self):
        def reduce(tensor, op):
            mine = tensor.double()
            theirs = self.vector(mine.numel(), op)
            return mine + theirs if op == "sum" else torch.maximum(mine, theirs)

        return Collectives(reduce, lambda t: torch.stack([t, t]), world=2, rank=0)

    def vector(self, n, op):
        return self.next_sum if op == "sum" else self.next_max


def test_reduction_across_two_ranks_matches_one_process():
    rank0 = {"train/reward": 0.5, "train/reward@weight": 4.0, "train/generated_tokens": 100.0,
             "train/response_length_max": 7.0, "loss/policy": -0.1}
    rank1 = {"train/reward": 1.0, "train/reward@weight": 12.0, "train/generated_tokens": 300.0,
             "train/response_length_max": 9.0, "loss/policy": -0.3}
    keys = sorted(k for k in rank0 if "@" not in k)
    means = [k for k in keys if reduction(k) == "mean"]
    sums = [k for k in keys if reduction(k) in ("sum", "partial")]
    maxima = [k for k in keys if reduction(k) == "max"]
    other = _TwoRanks(rank1)
    other.next_sum = torch.tensor([rank1[k] * rank1[k + "@weight"] for k in means] + [rank1[k + "@weight"] for k in means]
                                  + [rank1[k] for k in sums], dtype=torch.float64)
    other.next_max = torch.tensor([rank1[k] for k in maxima], dtype=torch.float64)
    out = reduce_across_ranks(rank0, other.collectives(), lambda keys: [keys, keys])
    assert out["train/reward"] == pytest.approx((0.5 * 4 + 1.0 * 12) / 16)  # weighted by responses, not by rank
    assert out["train/generated_tokens"] == 400.0 and out["train/response_length_max"] == 9.0
    assert out["loss/policy"] == pytest.approx(-0.4)  # each rank's share of the step loss adds up


def test_a_failed_collective_names_the_rank_and_phase():
    def broken(tensor, op):
        raise RuntimeError("Connection closed by peer")

    collectives = Collectives(broken, broken, world=2, rank=1, where=lambda: "at RL step 7")
    with pytest.raises(RuntimeError, match=r"rank 1 of 2: the collective of phase 'loss denominators' failed at RL step 7"):
        collectives.sum(torch.tensor(1.0), "loss denominators")


def test_fsdp_clips_through_its_own_global_norm():
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    from archer.update import clip_gradients

    class ShardedStandIn(FSDP):
        """An FSDP module stand-in (not initialised): records the call FSDP would reduce over shards."""

        def __init__(self):  # noqa: D107 - skip FSDP's process-group setup
            self.calls = []

        def clip_grad_norm_(self, max_norm, norm_type=2.0):
            self.calls.append(max_norm)
            return torch.tensor(3.0)

    sharded = ShardedStandIn()
    layer = torch.nn.Linear(2, 2)
    layer.weight.grad = torch.full_like(layer.weight, 10.0)
    assert clip_gradients(sharded, layer.parameters(), 1.0).item() == 3.0 and sharded.calls == [1.0]
    assert torch.equal(layer.weight.grad, torch.full_like(layer.weight, 10.0))  # torch's local clip did not run
    norm = clip_gradients(torch.nn.Linear(1, 1), layer.parameters(), 1.0)  # DDP / one process: torch's
    # the norm of a 2 x 2 gradient of 10s is 20; clipped to 1
    assert norm.item() == pytest.approx(20.0) and layer.weight.grad.norm().item() == pytest.approx(1.0)


def test_each_rank_uses_its_own_gpu_from_the_start(monkeypatch):
    from omegaconf import OmegaConf

    from archer.train import run_device

    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: current.append(device))
    monkeypatch.setenv("LOCAL_RANK", "3")
    device = run_device(OmegaConf.create({"trainer": {"accelerator": "gpu"}}))
    assert device == torch.device("cuda", 3) and current == [torch.device("cuda", 3)]
    assert run_device(OmegaConf.create({"trainer": {"accelerator": "cpu"}})) == torch.device("cpu")
