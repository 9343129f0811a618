"""Verifiers: `verifier(response, sample) -> float` (in [0, 1] unless a `reward_range` says
otherwise), rewards with several parts, and the scoring runner."""

from archer.verifiers.arithmetic import ArithmeticVerifier
from archer.verifiers.code import CodeVerifier
from archer.verifiers.format import AnswerLineFormat, BoxedFormat, ThinkClosedFormat
from archer.verifiers.logic import LogicVerifier
from archer.verifiers.math import MathVerifier
from archer.verifiers.runner import ScoringRunner
from archer.verifiers.weighted import FunctionReward, WeightedReward

__all__ = ["AnswerLineFormat", "ArithmeticVerifier", "BoxedFormat", "CodeVerifier", "FunctionReward", "LogicVerifier",
           "MathVerifier", "ScoringRunner", "ThinkClosedFormat", "WeightedReward"]
