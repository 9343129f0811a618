"""Verifiers: `verifier(response, sample) -> float` in [0, 1], and the scoring runner."""

from archer.verifiers.arithmetic import ArithmeticVerifier
from archer.verifiers.code import CodeVerifier
from archer.verifiers.logic import LogicVerifier
from archer.verifiers.math import MathVerifier
from archer.verifiers.runner import ScoringRunner

__all__ = ["ArithmeticVerifier", "CodeVerifier", "LogicVerifier", "MathVerifier", "ScoringRunner"]
