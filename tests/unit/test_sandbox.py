"""Hostile programs score 0 within their time limit and leave no process or file behind."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from archer.types import Sample
from archer.verifiers import CodeVerifier, sandbox
from archer.verifiers.sandbox import MARKER, Limits, run_python

LIMITS = Limits(timeout=2.0, memory_mb=512, max_output_bytes=1 << 16)
OUTSIDE = Path(tempfile.gettempdir()) / "archer-test-outside.txt"

# Each program prints "PWNED" only if its attack worked; the verifier expects "PWNED".
HOSTILE = {
    "infinite_loop": "while True: pass",
    "sleep": "import time; time.sleep(600)",
    "memory_bomb": "x = bytearray(10**11)\nprint('PWNED')",
    "growing_memory": "x = []\nwhile True: x.append(bytearray(10**7))",
    "fork_bomb": "import os\nwhile True: os.fork()",
    "subprocess": "import subprocess\nsubprocess.run(['sh', '-c', 'sleep 600 &'])\nprint('PWNED')",
    "multiprocessing": "import multiprocessing as m\nm.Process(target=print).start()\nprint('PWNED')",
    "huge_output": "while True: print('x' * 100000)",
    "write_outside": f"open({str(OUTSIDE)!r}, 'w').write('x')\nprint('PWNED')",
    "write_outside_os_open": f"import os\nos.close(os.open({str(OUTSIDE)!r}, os.O_CREAT | os.O_WRONLY))\nprint('PWNED')",
    "delete_outside": f"import shutil\nshutil.rmtree({str(Path.home())!r})\nprint('PWNED')",
    "read_environment": "import os\nprint('PWNED' if 'ARCHER_TEST_SECRET' in os.environ else 'clean')",
    "read_parent_environment": "import os\nprint('PWNED' if b'hunter2' in open(f'/proc/{os.getppid()}/environ', 'rb').read() else 'no')",
    "scan_proc_environ": ("import os\nfor p in os.listdir('/proc'):\n    try:\n"
                          "        if b'hunter2' in open(f'/proc/{p}/environ', 'rb').read(): print('PWNED'); break\n"
                          "    except Exception: pass"),
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('PWNED')",
    "kill_parent_pidfd": "import os, signal\nsignal.pidfd_send_signal(os.pidfd_open(os.getppid()), 9)\nprint('PWNED')",
    "kill_everything": "import os\nos.kill(-1, 9)\nprint('PWNED')",
    "ctypes": "import ctypes\nctypes.CDLL(None).kill(0, 9)\nprint('PWNED')",
    "recursion_bomb": "import sys\nsys.setrecursionlimit(10**9)\ndef f(n): return f(n + 1)\nf(0)",
    "network": "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\nprint('PWNED')",
    "raise_limits": "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))\nprint('PWNED')",
}


def _stray_processes() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if MARKER.encode() in cmdline:
                found.append(pid)
    return found


def _stray_folders() -> list[str]:
    return [p for p in os.listdir(tempfile.gettempdir()) if p.startswith(MARKER)]


@pytest.fixture(params=["namespaces", "hook_only"])
def isolation(request, monkeypatch):
    """Every attack must fail with and without the PID/network namespaces."""
    if request.param == "namespaces" and not sandbox.namespaces_available():
        pytest.skip("unshare is not permitted on this machine")
    if request.param == "hook_only":
        monkeypatch.setenv("ARCHER_SANDBOX_NAMESPACES", "0")
    sandbox._namespace_prefix.cache_clear()
    yield request.param
    sandbox._namespace_prefix.cache_clear()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_scores_zero_and_leaves_nothing(name, isolation, monkeypatch):
    monkeypatch.setenv("ARCHER_TEST_SECRET", "hunter2")
    OUTSIDE.unlink(missing_ok=True)
    verifier = CodeVerifier(timeout=2.0, total_timeout=3.0, memory_mb=512, max_output_bytes=1 << 16)
    sample = Sample(name, "?", {"test_type": "stdin", "tests": [{"input": "", "output": "PWNED"}]})
    started = time.perf_counter()
    assert verifier(f"```python\n{HOSTILE[name]}\n```", sample) == 0.0
    assert time.perf_counter() - started < 3.0 + 1.5
    assert not OUTSIDE.exists()
    assert Path.home().exists()
    time.sleep(0.05)
    assert _stray_processes() == [] and _stray_folders() == []


def test_a_normal_program_works_in_the_sandbox():
    result = run_python("import numpy, json\nopen('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read(), input())",
                        stdin="42\n", limits=LIMITS)
    assert result.ok and result.stdout.split() == ["ok", "42"]
    assert _stray_folders() == []


def test_time_limit_kills_the_whole_group_quickly():
    started = time.perf_counter()
    result = run_python("import time\ntime.sleep(600)", limits=Limits(timeout=0.5))
    assert result.timed_out and not result.ok and time.perf_counter() - started < 2.0


def test_output_is_capped():
    result = run_python("print('y' * 10**7)", limits=Limits(max_output_bytes=1000))
    assert not result.ok and len(result.stdout) <= 1000
