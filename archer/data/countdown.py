"""The testbed task: Countdown, reach a target from given numbers with + - * (docs/testbed.md).

Problem "3 7 2 to 8": combine every given number exactly once, two at a time, into the
target. A response is one line per step, each combining two numbers still available (given
or produced by an earlier line) into a new one, "7+3=10" then "10-2=8". Subtraction may not
go below zero and there is no division, so every value is a whole number >= 0.

Why this task: a response mixes the two kinds of token the paper separates. Copying a number
and writing the value of a step are *knowledge* (one right token, which a warmed-up model
gives with near certainty); choosing which numbers to combine and with which operator are
*forks* (several choices are possible, several lead to the target, most do not). RL has to
learn which forks pay off while the arithmetic stays right, and a policy that stops
exploring loses the other solution paths (what pass@k at large k measures).

The warm-up imitates a *noisy teacher*: with probability `teacher_accuracy` a demonstration
is one of the problem's solutions (drawn uniformly among the chains that reach the target),
otherwise a random chain of the same numbers, computed correctly but ending wherever it
ends. The warmed-up policy writes well-formed chains and knows the arithmetic, but its
choices at the forks are only loosely tied to the target.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from archer.config_checks import ConfigError
from archer.types import Sample
from archer.verifiers.countdown import OPERATORS, apply  # the verifier owns the rules


def chain_lines(order: tuple[int, ...], ops: tuple[str, ...]) -> tuple[list[str], int] | None:
    """The lines of the left-to-right chain `((n0 op0 n1) op1 n2) ...` and its value; None
    when a step is not allowed."""
    lines, total = [], order[0]
    for op, number in zip(ops, order[1:]):
        value = apply(op, total, number)
        if value is None:
            return None
        lines.append(f"{total}{op}{number}={value}")
        total = value
    return lines, total


def chains(numbers: list[int], operators: str) -> dict[int, list[str]]:
    """Every allowed left-to-right chain over all the numbers, grouped by the value it reaches
    (value -> distinct responses)."""
    found: dict[int, set[str]] = {}
    for order in set(itertools.permutations(numbers)):
        for ops in itertools.product(operators, repeat=len(numbers) - 1):
            chain = chain_lines(order, ops)
            if chain is not None:
                found.setdefault(chain[1], set()).add("\n".join(chain[0]))
    return {value: sorted(responses) for value, responses in found.items()}


def format_problem(numbers: list[int], target: int) -> str:
    return " ".join(map(str, numbers)) + f" to {target}"


@dataclass
class CountdownTask:
    """Train and held-out splits of the Countdown testbed task.

    Args:
        train_size, heldout_size: problems per split (disjoint: no (numbers, target) repeats).
        min_numbers, max_numbers: how many numbers a problem gives (steps = numbers - 1).
        max_number: numbers are drawn from 1..max_number.
        max_target: targets are drawn among the values some chain reaches, 0..max_target.
        operators: the operators allowed, a subset of "+-*".
        teacher_accuracy: share of warm-up demonstrations that are a solution (the rest are
            random chains of the same numbers).
        seed: the task's own seed (independent of the training seed).
    """

    train_size: int = 4000
    heldout_size: int = 200
    min_numbers: int = 3
    max_numbers: int = 4
    max_number: int = 9
    max_target: int = 99
    operators: str = "+-*"
    teacher_accuracy: float = 0.5
    seed: int = 1234

    def __post_init__(self):
        if not 2 <= self.min_numbers <= self.max_numbers <= 5:
            raise ConfigError(f"data.source.min_numbers/max_numbers must satisfy 2 <= min <= max <= 5, "
                              f"got {self.min_numbers}, {self.max_numbers}")
        if not self.operators or set(self.operators) - set(OPERATORS) or len(set(self.operators)) != len(self.operators):
            raise ConfigError(f"data.source.operators must be distinct characters among '+-*', got {self.operators!r}")
        if not 0.0 <= self.teacher_accuracy <= 1.0:
            raise ConfigError(f"data.source.teacher_accuracy must be in [0, 1], got {self.teacher_accuracy}")
        if self.max_number < 1 or self.max_target < 0 or self.train_size < 1 or self.heldout_size < 0:
            raise ConfigError("data.source.max_number and train_size must be >= 1, max_target and heldout_size >= 0")
        rng = random.Random(self.seed)
        seen: set[str] = set()
        samples: list[Sample] = []
        total, attempts = self.train_size + self.heldout_size, 0
        while len(samples) < total:
            attempts += 1
            if attempts > 50 * total:
                raise ConfigError(f"data.source: only {len(samples)} distinct Countdown problems found for {total} "
                                  "asked; allow more numbers, larger numbers or larger targets")
            numbers = [rng.randint(1, self.max_number) for _ in range(rng.randint(self.min_numbers, self.max_numbers))]
            reachable = chains(numbers, self.operators)
            targets = sorted(v for v in reachable if v <= self.max_target)
            if not targets:
                continue
            target = rng.choice(targets)
            problem = format_problem(numbers, target)
            if problem in seen:
                continue
            seen.add(problem)
            solutions = reachable[target]
            if rng.random() < self.teacher_accuracy:
                demonstration = rng.choice(solutions)
            else:
                demonstration = rng.choice([chain for found in reachable.values() for chain in found])
            info = {"numbers": numbers, "solution": solutions[0], "demonstration": demonstration,
                    "solutions": len(solutions)}
            samples.append(Sample(id=f"countdown-{len(samples)}", problem=problem, answer=target, info=info))
        self.heldout = samples[: self.heldout_size]
        self.train = samples[self.heldout_size :]
