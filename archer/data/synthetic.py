"""The default task: multi-step addition with a step-by-step answer and an exact verifier.

Problem "3+8+7", gold response "3+8=11\n11+7=18\n#18". Each step adds the next operand to
the running total, and the final `#` line is what `ArithmeticVerifier` checks.

The warm-up imitates a *noisy teacher*: in a share `slip_rate` of its demonstrations the
final answer line miscopies the total by 1 or 2. The warmed-up policy therefore knows the
format and mostly the arithmetic, but samples wrong answers at high-entropy tokens. Only
the exact verifier tells them apart: RL has a real, visible signal to exploit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from archer.config_checks import ConfigError
from archer.types import Sample


def solve_chain(terms: list[int], rng: random.Random | None = None, slip_rate: float = 0.0) -> tuple[str, int]:
    """A step-by-step response for a sum and its value; with `rng`, the final answer line
    slips by +-1 or +-2 with probability `slip_rate` (the noisy teacher's miscopy)."""
    lines, total = [], terms[0]
    for term in terms[1:]:
        lines.append(f"{total}+{term}={total + term}")
        total += term
    answer = total
    if rng is not None and rng.random() < slip_rate:
        answer = max(0, total + rng.choice([-2, -1, 1, 2]))
    lines.append(f"#{answer}")
    return "\n".join(lines), total


@dataclass
class SyntheticArithmetic:
    """Train and held-out splits of the multi-step addition task.

    Args:
        train_size: number of training problems.
        heldout_size: number of held-out problems (disjoint from training ones).
        min_terms, max_terms: how many numbers are summed (steps = terms - 1).
        max_operand: numbers are drawn from 1..max_operand.
        slip_rate: probability that a warm-up demonstration's final answer slips.
        seed: the task's own seed (independent of the training seed).
    """

    train_size: int = 4000
    heldout_size: int = 200
    min_terms: int = 3
    max_terms: int = 5
    max_operand: int = 9
    slip_rate: float = 0.4
    seed: int = 1234

    def __post_init__(self):
        if not 2 <= self.min_terms <= self.max_terms:
            raise ConfigError(f"data.min_terms/max_terms must satisfy 2 <= min <= max, got {self.min_terms}, {self.max_terms}")
        if not 0.0 <= self.slip_rate < 1.0:
            raise ConfigError(f"data.source.slip_rate must be in [0, 1), got {self.slip_rate}")
        if self.max_operand < 1 or self.train_size < 1 or self.heldout_size < 0:
            raise ConfigError("data.max_operand and data.train_size must be >= 1, data.heldout_size >= 0")
        rng = random.Random(self.seed)
        seen: set[str] = set()
        samples: list[Sample] = []
        total = self.train_size + self.heldout_size
        while len(samples) < total:
            terms = [rng.randint(1, self.max_operand) for _ in range(rng.randint(self.min_terms, self.max_terms))]
            problem = "+".join(map(str, terms))
            if problem in seen:
                continue
            seen.add(problem)
            solution, value = solve_chain(terms)
            demonstration, _ = solve_chain(terms, rng, self.slip_rate)
            info = {"solution": solution, "demonstration": demonstration}
            samples.append(Sample(id=f"add-{len(samples)}", problem=problem, answer=value, info=info))
        self.heldout = samples[: self.heldout_size]
        self.train = samples[self.heldout_size :]
