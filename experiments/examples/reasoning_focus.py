"""A user-defined strategy in a dozen lines: select it with `constraint._target_=...`.

ReasoningFocusConstraint keeps the policy gradient of high-entropy (reasoning) tokens
everywhere, but lets low-entropy (knowledge) tokens learn only from responses that scored
above their group's mean: wrong answers do not push down the knowledge the model already
states correctly. Everything else (clip, dual clip, KL, aggregation with global
denominators) is inherited from UniformConstraint.

    PYTHONPATH=. archer-train constraint=uniform \\
        constraint._target_=experiments.examples.reasoning_focus.ReasoningFocusConstraint
"""

from __future__ import annotations

from archer.constraints import UniformConstraint
from archer.types import LossOutput, PolicyBatch


class ReasoningFocusConstraint(UniformConstraint):
    """Uniform clip + KL; knowledge tokens of below-average responses carry no gradient."""

    name = "reasoning_focus"

    @property
    def needs_classes(self) -> bool:
        return True  # the trainer runs the classifier and fills batch.high_entropy

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        positive = (batch.advantages > 0).unsqueeze(-1)  # [N, 1], broadcast over tokens
        grad_mask = batch.response_mask & (batch.high_entropy | positive)
        return self._loss(batch, grad_mask)
