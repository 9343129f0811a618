"""A scoring worker process: `python -m archer.verifiers.worker FD` (started by ScoringRunner).

It receives the pickled verifier over the inherited connection, answers "ready" (or the
error that stopped it), then scores (index, response, sample, draw) tasks until told to stop or
until its parent goes away. It imports neither torch nor the trainer's main module.
"""

from __future__ import annotations

import signal
import sys
import traceback
from multiprocessing.connection import Connection

from archer.verifiers.scores import evaluate


def _die_with_parent() -> None:
    if sys.platform == "linux":
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def serve(conn: Connection) -> None:
    """Load the verifier, report readiness, then score tasks until None or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle
    try:
        verifier = conn.recv()
    except Exception:
        conn.send(("failed", traceback.format_exc(limit=3)))
        return
    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, response, sample, draw = task
        try:
            conn.send((index, evaluate(verifier, response, sample, draw), None))
        except Exception as err:
            conn.send((index, 0.0, f"{type(err).__name__}: {err}"[:300]))


if __name__ == "__main__":
    _die_with_parent()
    serve(Connection(int(sys.argv[1])))
