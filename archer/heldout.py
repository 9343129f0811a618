"""Deprecated location of `evaluate_heldout` (now in archer/evaluation.py)."""

import warnings

from archer.evaluation import evaluate_heldout

warnings.warn("archer.heldout is deprecated: use archer.evaluation.evaluate_heldout", DeprecationWarning, stacklevel=2)

__all__ = ["evaluate_heldout"]
