"""Run an untrusted Python program in a child process that cannot hurt the caller.

Layers, each cheap, together enough for model-written solutions on a training machine
(for adversarial users at scale, run the scorer in a container or a sandbox service):

- a fresh temporary working directory, removed afterwards, with an empty environment (no
  inherited secrets), and `python -I` (no user site, no environment variables);
- resource limits set by the child itself before any user code: address space, CPU time,
  file size (caps stdout, which goes to a file), no core dumps, a process count;
- its own session / process group, killed whole on timeout; SIGKILL if the parent dies
  (PR_SET_PDEATHSIG, Linux);
- where the kernel allows it (probed once), new PID and network namespaces (`unshare`): the
  program sees no other process and has no network;
- a PEP 578 audit hook installed before user code, which cannot be removed: it refuses
  fork/exec/spawn/kill, sockets, ctypes, writes and deletions outside the working
  directory, and reads of other processes' /proc entries.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Marker on every sandbox command line, so tests (and users) can find stray processes.
MARKER = "archer-sandbox"

# Runs inside the child before the user's program: limits, then the audit hook, then main.py.
_BOOT = r"""
import os, sys, resource
_MB, _CPU, _FSIZE, _NPROC = (int(x) for x in sys.argv[1:5])
for _lim, _val in ((resource.RLIMIT_AS, _MB << 20), (resource.RLIMIT_CPU, _CPU),
                   (resource.RLIMIT_FSIZE, _FSIZE), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, _NPROC)):
    try:
        resource.setrlimit(_lim, (_val, _val))
    except (ValueError, OSError):
        pass
_ROOT = os.path.realpath(os.getcwd())
_PROC_SELF = "/proc/%d" % os.getpid()
_SOURCE = open("main.py").read()
_BLOCKED = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
            "os.killpg", "subprocess.Popen", "socket.__new__", "socket.connect", "socket.bind",
            "resource.setrlimit", "resource.prlimit", "ctypes.dlopen", "ctypes.cdata", "signal.pthread_kill",
            "os.setuid", "sys.remote_exec", "pty.spawn"}
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
                "os.symlink", "os.link", "os.rename", "os.chflags", "os.lchflags", "os.mkfifo", "os.mknod",
                "shutil.rmtree", "os.setxattr", "os.removexattr"}
_NO_IMPORT = {"ctypes", "_ctypes", "_posixsubprocess", "multiprocessing", "_multiprocessing", "socket",
              "_socket", "pty"}
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

def _inside(path):
    if isinstance(path, int):
        return True
    real = os.path.realpath(os.fsdecode(path))
    return real == _ROOT or real.startswith(_ROOT + os.sep)

def _hook(event, args, _deny=PermissionError):
    if event == "open":
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE)
        if writing and not _inside(path):
            raise _deny("sandbox: writing outside the working directory is not allowed")
        real = os.path.realpath(os.fsdecode(path))
        if real.startswith("/proc/") and real.split("/")[2].isdigit() and not (
                real == _PROC_SELF or real.startswith(_PROC_SELF + "/")):
            raise _deny("sandbox: other processes are not visible")
    elif event in _BLOCKED:
        raise _deny("sandbox: %s is not allowed" % event)
    elif event in _PATH_EVENTS:
        for path in args[:2] if event in ("os.rename", "os.link", "os.symlink") else args[:1]:
            if isinstance(path, (str, bytes, os.PathLike)) and not _inside(path):
                raise _deny("sandbox: %s outside the working directory is not allowed" % event)
    elif event == "import" and args[0].split(".")[0] in _NO_IMPORT:
        raise ImportError("sandbox: module %r is not available" % args[0])

import signal as _signal
for _mod, _name in ((os, "pidfd_open"), (_signal, "pidfd_send_signal"), (os, "fork"), (os, "forkpty"),
                    (os, "kill"), (os, "killpg"), (os, "system"), (os, "posix_spawn"), (os, "posix_spawnp")):
    if hasattr(_mod, _name):
        delattr(_mod, _name)
sys.modules.pop("_posixsubprocess", None)
sys.dont_write_bytecode = True
sys.addaudithook(_hook)
del _hook, _mod, _name, _lim, _val, resource
sys.argv = ["main.py"]
_globals = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
exec(compile(_SOURCE, "main.py", "exec"), _globals)
"""


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use.

    Attributes:
        timeout: wall-clock seconds before the whole process group is killed.
        memory_mb: address-space limit.
        max_output_bytes: stdout beyond this kills the program (file-size limit).
        max_processes: process/thread limit (effective for non-root users; fork is refused anyway).
    """

    timeout: float = 6.0
    memory_mb: int = 1024
    max_output_bytes: int = 1 << 20
    max_processes: int = 64


@dataclass(frozen=True)
class RunResult:
    """Outcome of one run; `ok` is True when the program exited 0 within its time limit."""

    ok: bool
    timed_out: bool
    returncode: int | None
    stdout: str
    stderr_tail: str


def run_python(source: str, stdin: str = "", files: dict[str, str] | None = None,
               limits: Limits = Limits()) -> RunResult:
    """Run `source` as `main.py` in a fresh directory, with `files` written next to it."""
    folder = tempfile.mkdtemp(prefix=MARKER + "-")
    try:
        work = Path(folder)
        for name, text in {"main.py": source, **(files or {})}.items():
            (work / name).write_text(text)
        cpu = max(1, int(limits.timeout + 1))
        command = [*_launcher_prefix(), sys.executable, "-I", "-B", "-c", _BOOT,
                   str(limits.memory_mb), str(cpu), str(limits.max_output_bytes), str(limits.max_processes), MARKER]
        with open(work / ".stdout", "wb") as out, open(work / ".stderr", "wb") as err:
            proc = subprocess.Popen(
                command, cwd=folder, stdin=subprocess.PIPE, stdout=out, stderr=err,
                env={"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8"},
                start_new_session=True, preexec_fn=None if _launcher_prefix()[:1] == _setpriv() else _die_with_parent(),
            )
            timed_out = False
            try:
                proc.communicate(stdin.encode(), timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            except (BrokenPipeError, OSError):
                pass  # the program exited without reading its stdin
            finally:
                kill_group(proc)
        stdout = _read_capped(work / ".stdout", limits.max_output_bytes)
        stderr = _read_capped(work / ".stderr", 1 << 16)[-2000:]
        return RunResult(not timed_out and proc.returncode == 0, timed_out, proc.returncode, stdout, stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group (the program and anything it started), then reap."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _read_capped(path: Path, limit: int) -> str:
    with open(path, "rb") as handle:
        return handle.read(limit).decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=1)
def _setpriv() -> tuple[str, ...]:
    """`setpriv --pdeathsig KILL` where available: the child dies with its parent, set at exec
    time (no preexec function, which is unsafe in a multi-threaded trainer)."""
    binary = shutil.which("setpriv") if sys.platform == "linux" else None
    if binary is None:
        return ()
    try:
        ok = subprocess.run([binary, "--pdeathsig", "KILL", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (binary,) if ok else ()


def _launcher_prefix() -> tuple[str, ...]:
    setpriv = _setpriv()
    return (*setpriv, "--pdeathsig", "KILL", *_namespace_prefix()) if setpriv else _namespace_prefix()


@functools.lru_cache(maxsize=1)
def _namespace_prefix() -> tuple[str, ...]:
    """`unshare` arguments for fresh PID + network namespaces, or () where the kernel refuses."""
    if sys.platform != "linux" or os.environ.get("ARCHER_SANDBOX_NAMESPACES", "1") == "0":
        return ()
    binary = shutil.which("unshare")
    if binary is None:
        return ()
    base = [binary, "--pid", "--fork", "--mount-proc", "--net", "--kill-child"]
    for extra in ([], ["--user", "--map-root-user"]):
        try:
            probe = subprocess.run([*base[:1], *extra, *base[1:], "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return (*base[:1], *extra, *base[1:])
    return ()


def namespaces_available() -> bool:
    """True when runs get their own PID and network namespaces on this machine."""
    return bool(_namespace_prefix())


@functools.lru_cache(maxsize=1)
def _die_with_parent():
    """A preexec function asking Linux to SIGKILL the child when its parent dies (else None)."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return set_death_signal
