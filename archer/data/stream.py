"""Which prompts each RL step trains on: a pure function of (seed, step).

The batch of step k is the k-th slice of an endless sequence of seeded permutations of the
training set (a new permutation per pass). Refill draws for DAPO-style dynamic sampling
come from their own seeded stream. Because nothing is mutable, resuming at step k needs
only k: the module stores its step in the checkpoint and the loader starts from there.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from archer.config_checks import ConfigError
from archer.types import Sample


class PromptStream:
    """Deterministic prompt batches over a list of samples.

    Args:
        samples: the training prompts.
        prompts_per_step: prompts (groups) per RL step.
        seed: the run's seed.
    """

    def __init__(self, samples: list[Sample], prompts_per_step: int, seed: int = 0):
        if prompts_per_step < 1:
            raise ConfigError(f"rl.prompts_per_step must be >= 1, got {prompts_per_step}")
        if not samples:
            raise ConfigError("the training set is empty; check the data config")
        self.samples, self.prompts_per_step, self.seed = samples, prompts_per_step, seed
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self.samples)))
            random.Random(f"{self.seed}/epoch/{epoch}").shuffle(order)
            self._orders = {epoch: order}  # keep one pass in memory
        return self._orders[epoch]

    def batch(self, step: int) -> list[Sample]:
        """The prompts of RL step `step` (0-based)."""
        n = len(self.samples)
        out = []
        for position in range(step * self.prompts_per_step, (step + 1) * self.prompts_per_step):
            out.append(self.samples[self._order(position // n)[position % n]])
        return out

    def refill(self, step: int, attempt: int, count: int, rank: int = 0, world: int = 1) -> list[Sample]:
        """`count` extra prompts for refill `attempt` of step `step`, for one rank.

        The draw is global and sharded: one seeded order of the prompts this step did not use,
        of which rank r takes positions r, r + world, ... So ranks never refill with the same
        prompt, a refill never repeats one of the step's prompts, and the union over ranks is
        what one process drawing `world x count` would get."""
        used = {id(sample) for sample in self.batch(step)}
        order = [i for i in range(len(self.samples)) if id(self.samples[i]) not in used] or list(range(len(self.samples)))
        random.Random(f"{self.seed}/refill/{step}/{attempt}").shuffle(order)
        mine = order[rank::world]
        return [self.samples[mine[i % len(mine)]] for i in range(count)] if mine else []


class StepLoader:
    """The module's train loader: one Lightning epoch is one RL step.

    Each `iter()` yields the single step index `next_step()`. Making the epoch the RL step
    puts every checkpoint on an epoch boundary, where Lightning resumes exactly, and the
    progress bar's "Epoch k/N" reads as RL step k of N.
    """

    def __init__(self, next_step: Callable[[], int]):
        self.next_step = next_step

    def __iter__(self) -> Iterator[int]:
        return iter([self.next_step()])

    def __len__(self) -> int:
        return 1
