"""Exact verifier of the Countdown testbed task (archer/data/countdown.py).

A response scores 1.0 when it is nothing but step lines `a<op>b=c` (ASCII digits, no
leading zeros, lines split by "\n" only, surrounding whitespace ignored) that, in order, each
combine two numbers still available (given, or made by an earlier line) with + - or *,
state the value exactly, never go below zero, use every given number exactly once, and end
on the target. Anything else scores 0.0: a wrong value, a number not available (or used
twice), a number left unused, an extra line, a second attempt, any other text.
"""

from __future__ import annotations

import re
from collections import Counter

from archer.types import Sample

OPERATORS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}

# ASCII digits only, written as the number is (no leading zeros): "٧" or "07" is not a copy of 7
_NUMBER = r"(0|[1-9][0-9]{0,11})"
_STEP = re.compile(f"{_NUMBER}([+*-]){_NUMBER}={_NUMBER}")
_PROBLEM = re.compile(r"\s*(\d+(?: \d+)+) to (\d+)\s*")
_MAX_CHARS = 512  # a legal response has at most 4 short lines; longer text is not one


def apply(op: str, a: int, b: int) -> int | None:
    """The value of `a op b`, or None when it is not allowed (a subtraction below zero)."""
    value = OPERATORS[op](a, b)
    return value if value >= 0 else None


def problem_numbers(sample: Sample) -> list[int]:
    """The given numbers: the sample's `info["numbers"]`, else parsed from "3 7 2 to 8"."""
    if sample.info and "numbers" in sample.info:
        return [int(n) for n in sample.info["numbers"]]
    match = _PROBLEM.fullmatch(sample.problem)
    if match is None:
        raise ValueError(f"sample {sample.id!r}: not a Countdown problem ('3 7 2 to 8'): {sample.problem[:80]!r}")
    return [int(n) for n in match.group(1).split()]


class CountdownVerifier:
    """1.0 for a complete, correct derivation of the target, else 0.0.

    Example:
        >>> CountdownVerifier()("7+3=10\\n10-2=8", Sample("a", "3 7 2 to 8", 8))
        1.0
    """

    isolated = False  # a regular expression and integer arithmetic on <= 512 characters: in-process

    def __init__(self, operators: str = "+-*"):
        if not operators or set(operators) - set(OPERATORS):
            raise ValueError(f"verifier.operators must be among '+-*', got {operators!r}")
        self.operators = operators

    def extract(self, response: str, sample: Sample | None = None) -> str | None:
        """The value of the last step line, or None when there is none."""
        lines = response.strip().splitlines()
        match = _STEP.fullmatch(lines[-1].strip()) if lines else None
        return match.group(4) if match else None

    def vote_key(self, answer: str) -> str:
        return str(int(answer))

    def __call__(self, response: str, sample: Sample) -> float:
        return float(self.is_solution(response, problem_numbers(sample), int(sample.answer)))

    def is_solution(self, response: str, numbers: list[int], target: int) -> bool:
        if len(response) > _MAX_CHARS:  # before any scan of it: padding costs nothing
            return False
        text = response.strip()
        if not text:
            return False
        pool = Counter(numbers)
        for line in text.split("\n"):
            match = _STEP.fullmatch(line)
            if match is None:
                return False
            a, op, b, stated = int(match.group(1)), match.group(2), int(match.group(3)), int(match.group(4))
            if op not in self.operators or apply(op, a, b) != stated:
                return False
            pool[a] -= 1
            pool[b] -= 1
            if pool[a] < 0 or pool[b] < 0:
                return False
            pool[stated] += 1
        return +pool == Counter([target])
