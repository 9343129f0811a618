"""Constraint strategies: `constraint(PolicyBatch) -> LossOutput` (docs/design.md, "Contract")."""

from archer.constraints.base import ClippedPolicyConstraint
from archer.constraints.dual_token import DualTokenConstraint, TokenClassConstraint
from archer.constraints.masking import EntropyMaskConstraint, LoptiConstraint
from archer.constraints.uniform import UniformConstraint

__all__ = [
    "ClippedPolicyConstraint",
    "DualTokenConstraint",
    "EntropyMaskConstraint",
    "LoptiConstraint",
    "TokenClassConstraint",
    "UniformConstraint",
]
