"""Wall-clock seconds per phase of an RL step (logged as `time/<phase>`), and optionally the
peak memory of each phase (`memory/<phase>_peak_mb`): CUDA's peak allocation on GPUs, the
process's peak resident set size during the phase (sampled every 2 ms) on CPUs."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import torch


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


class _RssPeak(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.start_mb = self.peak_mb = _rss_mb()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.002):
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def finish(self) -> float:
        self._done.set()
        self.join()
        return max(self.peak_mb, _rss_mb())


class PhaseTimer:
    def __init__(self, track_memory: bool = False):
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self.track_memory = track_memory

    @contextmanager
    def __call__(self, phase: str):
        cuda = torch.cuda.is_available()
        # CUDA work is asynchronous: synchronise so the time lands in the right phase.
        if cuda:
            torch.cuda.synchronize()
            if self.track_memory:
                torch.cuda.reset_peak_memory_stats()
        sampler = _RssPeak() if self.track_memory and not cuda else None
        if sampler is not None:
            sampler.start()
        start = time.perf_counter()
        try:
            yield
        finally:
            if cuda:
                torch.cuda.synchronize()
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
            if self.track_memory:
                peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else sampler.finish()
                self.peak_mb[phase] = max(self.peak_mb.get(phase, 0.0), peak)

    def metrics(self) -> dict[str, float]:
        return {f"time/{k}": v for k, v in self.seconds.items()} | {f"memory/{k}_peak_mb": v for k, v in self.peak_mb.items()}
