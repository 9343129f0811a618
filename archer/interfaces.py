"""The small Protocols every component satisfies (docs/design.md, "Contract").

Any object with the right call signature works; `_target_` in a config picks the class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from archer.types import LossOutput, PolicyBatch, RolloutBatch, Sample, TokenStats


@runtime_checkable
class TokenClassifier(Protocol):
    """Splits response tokens: True marks the high-entropy (reasoning) class, inside the mask."""

    def __call__(self, stats: TokenStats) -> Tensor: ...


@runtime_checkable
class Constraint(Protocol):
    """Turns a micro-batch into a loss. `phases` lists the callables that each get one
    optimizer step (one for most strategies, two for Lopti)."""

    phases: Sequence[Callable[[PolicyBatch], LossOutput]]
    needs_reference: bool
    needs_classes: bool

    def __call__(self, batch: PolicyBatch) -> LossOutput: ...


@runtime_checkable
class AdvantageEstimator(Protocol):
    def __call__(self, rewards: Tensor, group_ids: Tensor) -> Tensor: ...


@runtime_checkable
class Verifier(Protocol):
    """Scores one response for one sample, in [0, 1]."""

    def __call__(self, response: str, sample: Sample) -> float: ...


@runtime_checkable
class RolloutEngine(Protocol):
    """Samples responses; the trainer's forward pass stays the source of truth for log-probs."""

    def generate(self, policy: torch.nn.Module, prompt_ids: list[list[int]], n: int) -> RolloutBatch: ...

    # root: the module the training strategy wrapped (FSDP holds shards of the policy there)
    def sync_weights(self, policy: torch.nn.Module, root: torch.nn.Module | None = None) -> None: ...
