"""ScoringRunner: parallel workers, per-response timeouts, failures scored 0 and counted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from archer.config_checks import ConfigError
from archer.types import Sample
from archer.verifiers import ArithmeticVerifier, CodeVerifier, MathVerifier, ScoringRunner
from tests.doubles import MisbehavingVerifier


def _samples(n: int) -> list[Sample]:
    return [Sample(str(i), "?", 0) for i in range(n)]


def _workers_alive() -> int:
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                count += b"archer.verifiers.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                pass
    return count


def test_failures_score_zero_are_counted_and_the_run_goes_on():
    texts = ["ok", "sleep", "crash", "raise", "nan", "2", "ok", "sleep", "ok"]
    with ScoringRunner(MisbehavingVerifier(), workers=2, timeout=1.0) as runner:
        started = time.perf_counter()
        scores, metrics = runner(texts, _samples(len(texts)))
        assert scores.tolist() == [1, 0, 0, 0, 0, 1, 1, 0, 1]
        assert metrics == {"reward/errors": 3.0, "reward/timeouts": 2.0}
        assert time.perf_counter() - started < 10
        # the pool recovered: the next batch is scored normally
        scores, metrics = runner(["ok"] * 20, _samples(20))
        assert scores.sum() == 20 and metrics["reward/errors"] == metrics["reward/timeouts"] == 0
        assert _workers_alive() == 2
    assert _workers_alive() == 0


def test_in_process_mode_counts_errors():
    runner = ScoringRunner(MisbehavingVerifier(), workers=0)
    scores, metrics = runner(["ok", "raise", "nan", "2"], _samples(4))
    assert scores.tolist() == [1, 0, 0, 1] and metrics["reward/errors"] == 2


def test_auto_workers_follow_the_verifier():
    assert ScoringRunner(ArithmeticVerifier()).workers == 0
    assert ScoringRunner(MathVerifier()).workers >= 1
    assert ScoringRunner(CodeVerifier()).workers >= 1


def test_bad_settings_fail_at_construction():
    with pytest.raises(ConfigError, match="scoring.workers"):
        ScoringRunner(MathVerifier(), workers=-1)
    with pytest.raises(ConfigError, match="scoring.timeout"):
        ScoringRunner(MathVerifier(), timeout=0)
    with pytest.raises(ConfigError, match="picklable"):
        ScoringRunner(lambda response, sample: 1.0, workers=2)


def test_workers_agree_with_in_process_scores():
    verifier = MathVerifier()
    golds = ["\\frac{1}{2}", "3", "(1,2)", "x^2"] * 8
    answers = ["0.5", "4", "(1, 2)", "x*x"] * 8
    samples = [Sample(str(i), "?", g) for i, g in enumerate(golds)]
    texts = [f"\\boxed{{{a}}}" for a in answers]
    with ScoringRunner(verifier, workers=2) as runner:
        parallel, _ = runner(texts, samples)
    serial, _ = ScoringRunner(verifier, workers=0)(texts, samples)
    assert parallel.tolist() == serial.tolist() == [1, 0, 1, 1] * 8
