"""Isolation baselines that Archer argues against (docs/paper.md).

- `EntropyMaskConstraint` (the 80/20 paper, arXiv 2506.01939): policy gradient only on
  high-entropy tokens; low-entropy tokens get none, but still count in the denominators.
- `LoptiConstraint` (arXiv 2505.12929): two update phases, low-probability tokens first,
  then high-probability tokens, each its own optimizer step. Use it with
  `classifier=low_probability` (True = p < 0.5). Each phase keeps the whole mini-batch's
  denominators, so the two phases' losses add up to the uniform loss; Lopti's own code
  normalises each phase by its own token count, which Adam's scale invariance makes a
  small difference (a deliberate departure).
"""

from __future__ import annotations

from collections.abc import Sequence

from archer.constraints.uniform import UniformConstraint
from archer.types import LossOutput, PolicyBatch


class EntropyMaskConstraint(UniformConstraint):
    """Clip loss (and KL, if any) only on high-entropy tokens; denominators unchanged."""

    name = "entropy_mask"

    def __init__(self, eps_low: float = 0.2, eps_high: float = 0.28, kl_coef: float = 0.0, **kwargs):
        super().__init__(eps_low=eps_low, eps_high=eps_high, kl_coef=kl_coef, **kwargs)

    @property
    def needs_classes(self) -> bool:
        return True

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        if batch.high_entropy is None:
            raise ValueError("EntropyMaskConstraint needs PolicyBatch.high_entropy; configure a token classifier")
        return self._loss(batch, batch.high_entropy & batch.response_mask)


class _LoptiPhase:
    """One Lopti phase: the uniform loss restricted to one token class."""

    def __init__(self, parent: LoptiConstraint, name: str, on_high_class: bool):
        self.parent, self.name, self.on_high_class = parent, name, on_high_class

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        if batch.high_entropy is None:
            raise ValueError("LoptiConstraint needs PolicyBatch.high_entropy; use classifier=low_probability")
        chosen = batch.high_entropy if self.on_high_class else ~batch.high_entropy
        out = self.parent._loss(batch, chosen & batch.response_mask)
        metrics = {f"{k}/{self.name}" if k == "loss/policy" else k: v for k, v in out.metrics.items()}
        return LossOutput(out.loss, metrics)


class LoptiConstraint(UniformConstraint):
    """Lopti: update the classifier's True class first, then the rest, in separate steps."""

    name = "lopti"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._phases = (
            _LoptiPhase(self, "low_probability", on_high_class=True),
            _LoptiPhase(self, "high_probability", on_high_class=False),
        )

    @property
    def phases(self) -> Sequence[_LoptiPhase]:
        return self._phases

    @property
    def needs_classes(self) -> bool:
        return True

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        # Both phases at once (the sum of their losses): for evaluation and tests.
        outputs = [phase(batch) for phase in self._phases]
        return LossOutput(outputs[0].loss + outputs[1].loss, {**outputs[0].metrics, **outputs[1].metrics})
