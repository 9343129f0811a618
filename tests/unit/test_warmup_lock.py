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
