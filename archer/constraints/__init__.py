"""Constraint strategies: `constraint(PolicyBatch) -> LossOutput` (docs/design.md, "Contract")."""

from archer.constraints.base import ClippedPolicyConstraint
from archer.constraints.clip_cov import ClipCovConstraint
from archer.constraints.dual_token import DualTokenConstraint, TokenClassConstraint
from archer.constraints.kl_cov import KLCovConstraint
from archer.constraints.masking import EntropyMaskConstraint, LoptiConstraint
from archer.constraints.uniform import UniformConstraint

__all__ = [
    "ClipCovConstraint",
    "ClippedPolicyConstraint",
    "DualTokenConstraint",
    "EntropyMaskConstraint",
    "KLCovConstraint",
    "LoptiConstraint",
    "TokenClassConstraint",
    "UniformConstraint",
]
