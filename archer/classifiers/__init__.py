"""Token classifiers: `classifier(TokenStats) -> bool [N, T]`, True on the high-entropy class."""

from archer.classifiers.quantile import (
    BatchQuantileClassifier,
    GroupQuantileClassifier,
    ResponseQuantileClassifier,
)
from archer.classifiers.simple import LowProbabilityClassifier, NoTokenClassifier, RandomFractionClassifier

__all__ = [
    "BatchQuantileClassifier",
    "GroupQuantileClassifier",
    "LowProbabilityClassifier",
    "NoTokenClassifier",
    "RandomFractionClassifier",
    "ResponseQuantileClassifier",
]
