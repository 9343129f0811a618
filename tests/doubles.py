"""Test doubles, selected by `_target_` in overrides (never by patching internals)."""

from __future__ import annotations

import torch

from archer.constraints import UniformConstraint
from archer.types import LossOutput, PolicyBatch, Sample


class ParityVerifier:
    """1.0 for responses of even length: rewards vary inside every group, so every step has
    a non-zero policy gradient even for an untrained model."""

    def __call__(self, response: str, sample: Sample) -> float:
        return float(len(response) % 2 == 0)


class NaNConstraint(UniformConstraint):
    """A broken strategy whose loss is NaN."""

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        out = super().__call__(batch)
        return LossOutput(out.loss * torch.tensor(float("nan")), out.metrics)


class MisbehavingVerifier:
    """Scores by the response's text: "sleep" hangs, "crash" kills its own process, "raise"
    raises, "nan" returns NaN, "2" returns 2 (clamped), anything else 1.0."""

    isolated = True

    def __call__(self, response: str, sample: Sample) -> float:
        import os
        import signal
        import time

        if response == "sleep":
            time.sleep(3600)
        if response == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if response == "raise":
            raise RuntimeError("verifier bug")
        if response == "nan":
            return float("nan")
        if response == "2":
            return 2.0
        return 1.0


class GroupFilteringVerifier:
    """Drops about half the groups under `filter=drop_uniform`, decided by the prompt alone: a
    prompt whose id hashes even gets 1.0 for every response (a uniform group), the others score
    by response-length parity (mixed). With `rollout.per_prompt_seed=true` the kept groups are
    the same for any number of processes, while ranks keep different numbers of them."""

    def __call__(self, response: str, sample: Sample) -> float:
        import hashlib

        if hashlib.sha256(sample.id.encode()).digest()[0] % 2 == 0:
            return 1.0
        return float(len(response) % 2 == 0)
