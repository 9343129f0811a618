"""Score a batch of responses: in parallel worker processes, each response under a timeout.

A timeout, a crash of the worker or an exception in the verifier scores 0 and is counted
(`reward/timeouts`, `reward/errors`); the run goes on. A worker that overruns is killed
(with any sandboxed program it started, which dies with its parent) and replaced.

`workers="auto"` uses worker processes for verifiers that declare `isolated = True` (math,
code: they can hang in C code or run programs) and scores in-process otherwise (the pure
regex verifiers of the arithmetic and logic tasks, where a process hop costs more than the
check).
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import pickle
import subprocess
import sys
import time
import weakref
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING

from archer.config_checks import ConfigError, check_positive
from archer.types import Sample
from archer.verifiers.scores import checked, clip_reward, evaluate, reward_range

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class _Worker:
    """One `python -m archer.verifiers.worker` process and its connection."""

    def __init__(self, verifier_bytes: bytes):
        self.conn, child = mp.Pipe()
        # The child sees the same import path (user verifiers defined next to the run script).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen([sys.executable, "-m", "archer.verifiers.worker", str(child.fileno())],
                                        pass_fds=[child.fileno()], env=env)
        child.close()
        self.conn.send_bytes(verifier_bytes)
        self.task: int | None = None
        self.deadline = math.inf

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            self.stop(kill=True)
            raise RuntimeError(f"a scoring worker did not start within {timeout:.0f}s")
        try:
            status, detail = self.conn.recv()
        except (EOFError, OSError):
            status, detail = "failed", f"exit code {self.process.wait()}"
        if status != "ready":
            self.stop(kill=True)
            raise ConfigError(f"a scoring worker could not load the verifier: {detail}; a verifier used with "
                              "scoring.workers > 0 must be importable by module path (not defined in __main__)")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, kill: bool = False) -> None:
        if not kill and self.alive():
            try:
                self.conn.send(None)
                self.process.wait(timeout=2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        if self.alive():
            self.process.kill()  # any sandboxed program it started dies with it (PDEATHSIG)
        self.process.wait()
        self.conn.close()


class ScoringRunner:
    """`runner(responses, samples) -> (scores [N], metrics)` with any `Verifier`.

    Args:
        verifier: `verifier(response, sample) -> float`, clipped to its `reward_range` ((0, 1) unless
            it says otherwise; None: any finite value); with `components` and `combine` (e.g.
            `WeightedReward`), each part is logged as `reward/<name>`. Must be picklable to use workers.
        workers: worker processes; 0 scores in this process; "auto": min(CPUs, 8) for verifiers
            marked `isolated`, else 0.
        timeout: seconds one response may take in a worker before it scores 0.
        startup_timeout: seconds a new worker may take to start and load the verifier.

    Workers are fresh interpreters (`python -m archer.verifiers.worker`): they inherit neither
    the trainer's threads, CUDA state and memory, nor its main module.
    """

    def __init__(self, verifier, workers: int | str = "auto", timeout: float = 60.0, startup_timeout: float = 120.0):
        check_positive("scoring.timeout", timeout)
        if workers == "auto":
            workers = min(os.cpu_count() or 1, 8) if getattr(verifier, "isolated", False) else 0
        if not isinstance(workers, int) or workers < 0:
            raise ConfigError(f"scoring.workers must be 'auto' or an integer >= 0, got {workers!r}")
        budget = getattr(verifier, "total_timeout", None)
        if workers and budget is not None and timeout < budget + 5:
            raise ConfigError(f"scoring.timeout ({timeout}) must be at least the verifier's own budget "
                              f"(verifier.total_timeout={budget}) + 5 s of sandbox start-up, or responses that use "
                              f"their whole budget count as timeouts; set scoring.timeout={budget + 10:g}")
        self.verifier, self.workers, self.timeout, self.startup_timeout = verifier, workers, float(timeout), startup_timeout
        self._verifier_bytes = b""
        if workers:
            try:
                self._verifier_bytes = pickle.dumps(verifier)
            except Exception as err:
                raise ConfigError(f"scoring.workers={workers} needs a picklable verifier, and "
                                  f"{type(verifier).__name__} is not ({err}); set scoring.workers=0") from err
        self._pool: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _stop_all, self._pool)
        self._options = {"workers": workers, "timeout": timeout, "startup_timeout": startup_timeout}
        self._accuracy_runner: ScoringRunner | None = None

    def for_accuracy(self) -> ScoringRunner:
        """The runner that grades correctness alone: this one, or for a reward with parts
        (`accuracy_verifier`) a runner of that part with the same options (held-out
        evaluation and validation report solving the problem, not format bonuses)."""
        part = getattr(self.verifier, "accuracy_verifier", None)
        if part is None:
            return self
        if self._accuracy_runner is None:
            self._accuracy_runner = ScoringRunner(part, **self._options)
        return self._accuracy_runner

    def __call__(self, responses: list[str], samples: list[Sample],
                 draws: list[str] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Scores [N] (in [0, 1] unless the verifier's `reward_range` says otherwise) and metrics:
        counts of failures, and for verifiers with parts each part's mean and `reward/solved`,
        the responses whose accuracy part scored 1.

        Args:
            draws: one key per response for verifiers that draw tests at random
                (`draws_tests = True`, e.g. the code verifier): training passes (seed, step, rank,
                response) so each response meets its own subset; None lets the verifier key on
                the response text.
        """
        if len(responses) != len(samples) or (draws is not None and len(draws) != len(responses)):
            raise ValueError(f"{len(responses)} responses for {len(samples)} samples"
                             + (f" and {len(draws)} draw keys" if draws is not None else ""))
        if not getattr(self.verifier, "draws_tests", False) or draws is None:
            draws = [None] * len(responses)
        if self.workers == 0:
            values, errors, timeouts = self._score_here(responses, samples, draws)
        else:
            values, errors, timeouts = self._score_in_workers(responses, samples, draws)
        import torch

        metrics = {"reward/errors": float(errors), "reward/timeouts": float(timeouts)}
        combine = getattr(self.verifier, "combine", None)
        if combine is not None:  # named parts (WeightedReward): log each, train on the weighted sum
            parts = [v if isinstance(v, dict) else None for v in values]
            names = list(self.verifier.parts)
            for name in names:
                metrics[f"reward/{name}"] = sum(p[name] for p in parts if p) / len(parts) if parts else 0.0
            accuracy = self.verifier.accuracy_part
            metrics["reward/solved"] = float(sum(p is not None and p[accuracy] == 1.0 for p in parts))
            values = [combine(p) if p else 0.0 for p in parts]
        bounds = reward_range(self.verifier)
        scores = torch.tensor([clip_reward(v, bounds) for v in values], dtype=torch.float32)
        return scores, metrics

    def close(self) -> None:
        """Stop the worker processes (also done when the runner is garbage-collected)."""
        _stop_all(self._pool)
        if self._accuracy_runner is not None:
            self._accuracy_runner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        raise TypeError("ScoringRunner owns processes and cannot be pickled; pickle its verifier instead")

    def _score_here(self, responses, samples, draws):
        values, errors = [], 0
        for response, sample, draw in zip(responses, samples, draws):
            try:
                value = checked(evaluate(self.verifier, response, sample, draw))
            except Exception as err:  # a verifier bug must not stop training: score 0, count it
                errors += 1
                log.warning("verifier failed on sample %s: %r", sample.id, err)
                value = 0.0
            values.append(value)
        return values, errors, 0

    def _score_in_workers(self, responses, samples, draws):
        fresh = [_Worker(self._verifier_bytes) for _ in range(self.workers - len(self._pool))]
        self._pool.extend(fresh)
        for worker in fresh:
            worker.wait_ready(self.startup_timeout)
        values = [0.0] * len(responses)
        todo = list(range(len(responses)))[::-1]
        errors = timeouts = 0
        busy: dict[Connection, _Worker] = {}
        while todo or busy:
            for worker in list(self._pool):
                if worker.task is None and todo:
                    if not worker.alive():  # died between batches
                        worker = self._replace(worker)
                    index = todo.pop()
                    worker.conn.send((index, responses[index], samples[index], draws[index]))
                    worker.task, worker.deadline = index, time.monotonic() + self.timeout
                    busy[worker.conn] = worker
            left = min(w.deadline for w in busy.values()) - time.monotonic()
            for conn in wait(list(busy), timeout=max(left, 0.0)):
                worker = busy.pop(conn)
                try:
                    index, value, error = conn.recv()
                except (EOFError, OSError):  # the worker died (segfault, OOM kill, killed by the program)
                    errors += 1
                    log.warning("scoring worker died on sample %s; scored 0", samples[worker.task].id)
                    self._replace(worker)
                    continue
                if error is None:
                    try:
                        value = checked(value)
                    except ValueError as err:
                        error = str(err)
                if error is not None:
                    errors += 1
                    log.warning("verifier failed on sample %s: %s", samples[index].id, error)
                    value = 0.0
                values[index], worker.task, worker.deadline = value, None, math.inf
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if worker.deadline <= now and not conn.poll(0):  # an answer waiting is not late
                    timeouts += 1
                    log.warning("sample %s took over %.0fs to score; scored 0", samples[worker.task].id, self.timeout)
                    del busy[conn]
                    self._replace(worker)
        return values, errors, timeouts

    def _replace(self, worker: _Worker) -> _Worker:
        worker.stop(kill=True)
        fresh = _Worker(self._verifier_bytes)
        fresh.wait_ready(self.startup_timeout)
        self._pool[self._pool.index(worker)] = fresh
        return fresh


def _stop_all(pool: list[_Worker]) -> None:
    for worker in pool:
        worker.stop()
    pool.clear()
