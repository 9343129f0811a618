"""Parallel sweep jobs of one seed share one warm-up: the cache is locked while it is made."""

from __future__ import annotations

import threading
import time

from archer.train import _exclusive


def test_a_second_job_waits_for_the_warm_up_lock(tmp_path):
    cache = tmp_path / "cache" / "warmup-abc.pt"
    entered = threading.Event()

    def second_job():
        with _exclusive(cache):
            entered.set()

    with _exclusive(cache):
        assert cache.parent.is_dir()
        waiting = threading.Thread(target=second_job)
        waiting.start()
        time.sleep(0.3)
        assert not entered.is_set()  # held by the first job: the second waits
    waiting.join(timeout=10)
    assert entered.is_set()
    with _exclusive(None):  # no cache: nothing to lock
        pass


def test_warm_up_settings_and_data_without_worked_answers_are_refused_by_key():
    import pytest

    from archer.config_checks import ConfigError
    from archer.types import Sample
    from archer.warmup import WarmupConfig, supervised_warmup

    with pytest.raises(ConfigError, match="model.warmup.batch_size >= 1"):
        WarmupConfig(steps=10, batch_size=0, lr=1e-5)
    with pytest.raises(ConfigError, match="model.warmup.lr > 0"):
        WarmupConfig(steps=10, batch_size=4, lr=0.0)
    WarmupConfig(steps=0, batch_size=0, lr=0.0)  # no warm-up: nothing to check
    with pytest.raises(ConfigError, match="info\\['solution'\\].*model.warmup.steps=0"):
        supervised_warmup(None, None, None, [Sample("a", "p", "1")], WarmupConfig(steps=1, batch_size=1, lr=1.0))
