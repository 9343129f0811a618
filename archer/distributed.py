"""Cross-rank operations of the RL step, and how each metric is reduced over micro-batches and ranks.

Every collective is named by its phase: when ranks fall out of step (a bug, a dead peer), the
process group's timeout makes the waiting call fail, and the error says which rank, RL step
and phase were waiting, instead of hanging forever.

Metrics are reduced by what they are (`reduction(key)`): counts are summed, maxima take the
max, everything else is a mean weighted by what it averages over, given by a companion key
`"<key>@weight"` (responses, tokens of a class) or 1. A rank that reports nothing for a key
does not dilute it, and an empty token class does not count as 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from archer.types import WEIGHT

# counts: the run's totals are sums over micro-batches and ranks
SUMMED = frozenset({"train/generated_tokens", "train/trained_responses", "train/scored_responses",
                    "reward/errors", "reward/timeouts", "perf/tokens_per_second"})


def reduction(key: str) -> str:
    """"sum", "max", "mean", or "partial" (a loss term: this rank's share of an optimizer step's
    loss; the update divides it by the number of optimizer steps, so sums over micro-batches,
    steps and ranks give the mean step loss) for a metric key."""
    if key.startswith(("loss/policy", "loss/total")):
        return "partial"
    if key in SUMMED:
        return "sum"
    if key.endswith("_max") or key.startswith(("time/", "memory/")) or "/ratio_max" in key:
        return "max"
    return "mean"


class Collectives:
    """Sums, maxima and gathers across ranks (identities on one process).

    Args:
        reduce: `(tensor, op) -> tensor`, the strategy's all-reduce ("sum" or "max").
        all_gather: `tensor -> [world, ...]`, the strategy's all-gather.
        world, rank: the process group's size and this process's rank.
        device: where tensors must be for the backend (CUDA for NCCL).
        where: `() -> str`, the current RL step, for error messages.
    """

    def __init__(self, reduce: Callable[[Tensor, str], Tensor], all_gather: Callable[[Tensor], Tensor],
                 world: int, rank: int, device: torch.device | str = "cpu", where: Callable[[], str] = lambda: ""):
        self._reduce, self._all_gather, self.world, self.rank, self.where = reduce, all_gather, world, rank, where
        self.device = torch.device(device)

    def _run(self, phase: str, call):
        try:
            return call()
        except RuntimeError as err:
            raise RuntimeError(
                f"rank {self.rank} of {self.world}: the collective of phase '{phase}' failed {self.where()} "
                f"({str(err)[:300]}). The ranks are out of step (one is stuck, crashed or runs other "
                "collectives); see the other ranks' logs. The last checkpoint is intact."
            ) from err

    def sum(self, value: Tensor, phase: str) -> Tensor:
        value = value if value.is_floating_point() else value.float()
        return value if self.world == 1 else self._run(phase, lambda: self._reduce(value.to(self.device), "sum"))

    def max(self, value: Tensor, phase: str) -> Tensor:
        value = value if value.is_floating_point() else value.float()
        return value if self.world == 1 else self._run(phase, lambda: self._reduce(value.to(self.device), "max"))

    def gather(self, values: Tensor, phase: str) -> Tensor:
        """1-D tensors of any length, concatenated over ranks (two all-gathers: lengths, values)."""
        if self.world == 1:
            return values

        def run() -> Tensor:
            sizes = self._all_gather(torch.tensor([values.numel()], device=self.device)).flatten().tolist()
            padded = torch.zeros(max(max(sizes), 1), dtype=values.dtype, device=self.device)  # gloo refuses empty
            padded[: values.numel()] = values
            everything = self._all_gather(padded).reshape(self.world, -1)
            return torch.cat([everything[r, : int(n)] for r, n in enumerate(sizes)]).to(values.device)

        return self._run(phase, run)


def accumulate(totals: dict[str, list], metrics: dict) -> None:
    """Collect one micro-batch's metrics (tensors stay on their device until `finish`)."""
    for key, value in metrics.items():
        if not key.endswith(WEIGHT):
            totals.setdefault(key, []).append((value, metrics.get(key + WEIGHT, 1.0)))


def finish(totals: dict[str, list]) -> dict[str, float]:
    """Collected values -> one value per key (sum, max or weighted mean) and, for means, its
    weight (kept for the cross-rank step). One host transfer for all of them."""
    if not totals:
        return {}
    device = next((v.device for pairs in totals.values() for v, _ in pairs if isinstance(v, Tensor)), "cpu")

    def scalars(items) -> Tensor:
        return torch.stack([torch.as_tensor(x, dtype=torch.float32, device=device).detach().reshape(()) for x in items])

    rows = []
    for key, pairs in totals.items():
        values, weights = scalars([v for v, _ in pairs]), scalars([w for _, w in pairs])
        kind = reduction(key)
        if kind == "max":
            rows.append(torch.stack([values.max(), values.new_tensor(1.0)]))
        elif kind in ("sum", "partial"):  # partial values arrive pre-divided by the optimizer steps
            rows.append(torch.stack([values.sum(), values.new_tensor(1.0)]))
        else:
            weight = weights.sum()
            rows.append(torch.stack([(values * weights).sum() / weight.clamp(min=1e-12), weight]))
    out: dict[str, float] = {}
    for key, (value, weight) in zip(totals, torch.stack(rows).tolist()):
        if reduction(key) != "mean":
            out[key] = value
        elif weight > 0:  # an empty class has no value rather than 0
            out[key], out[key + WEIGHT] = value, weight
    return out


def reduce_across_ranks(metrics: dict[str, float], collectives: Collectives, gather_keys) -> dict[str, float]:
    """Each metric reduced over the ranks that report it; weights dropped.

    Args:
        gather_keys: `sorted keys -> list of every rank's sorted keys` (ranks may report different keys).
    """
    keys = sorted(k for k in metrics if not k.endswith(WEIGHT))
    if collectives.world > 1:
        keys = sorted(set().union(*gather_keys(keys)))
    means = [k for k in keys if reduction(k) == "mean"]
    sums = [k for k in keys if reduction(k) in ("sum", "partial")]
    maxima = [k for k in keys if reduction(k) == "max"]
    weights = {k: float(metrics.get(k + WEIGHT, 1.0)) if k in metrics else 0.0 for k in means}
    added = torch.tensor([metrics.get(k, 0.0) * weights[k] for k in means] + [weights[k] for k in means]
                         + [metrics.get(k, 0.0) for k in sums], dtype=torch.float64)
    added = collectives.sum(added, "metrics").double().cpu()
    top = collectives.max(torch.tensor([metrics.get(k, float("-inf")) for k in maxima], dtype=torch.float64),
                          "metrics").cpu()
    out = {}
    for i, key in enumerate(means):
        weight = added[len(means) + i].item()
        if weight > 0:
            out[key] = added[i].item() / weight
    out.update({key: added[2 * len(means) + i].item() for i, key in enumerate(sums)})
    out.update({key: value for key, value in zip(maxima, top.tolist()) if value != float("-inf")})
    return out
