"""The first code that runs inside the sandbox, before the candidate's program (standard library only).

    python -I -S -B /opt/archer/harness.py CONFIG_JSON      (started by archer/verifiers/sandbox.py)

It drops to the unprivileged uid it is given (machines where the scorer runs as root), sets
the resource limits, reads the program from the request channel, adds an audit hook (an extra
layer only: the boundary is the sandbox itself), and runs the program:

- `stdin` mode: as `__main__`, with the test's input on stdin and stdout going to the parent,
  which compares it;
- `calls` mode: as a module, then answers call requests (`[args, kwargs]` of plain data) with
  `[status, result, [args, kwargs] after the call]`, all encoded by `plain.py`, on its own
  channel (the program's prints go elsewhere).

Nothing here ever sees an expected output: verdicts are computed outside, from what this
process hands back. Whatever the program does to this harness can only change what it hands
back, which is equivalent to returning that value.
"""

import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _drop_privileges(uid, gid):
    if uid is None:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("sandbox: could not drop privileges")


def _set_limits(config):
    import resource

    for name, value in (("RLIMIT_AS", config["memory_bytes"]), ("RLIMIT_CPU", config["cpu_seconds"]),
                        ("RLIMIT_FSIZE", config["file_bytes"]), ("RLIMIT_CORE", 0),
                        ("RLIMIT_NPROC", config["threads"]), ("RLIMIT_NOFILE", 64)):
        resource.setrlimit(getattr(resource, name), (value, value))


def _read_frame(fd):
    header = _read_exactly(fd, 8)
    if header is None:
        return None
    return _read_exactly(fd, int.from_bytes(header, "big"))


def _read_exactly(fd, size):
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_frame(fd, payload):
    data = len(payload).to_bytes(8, "big") + payload
    while data:
        data = data[os.write(fd, data):]


def _audit_hook(event, args):
    """Refuse process creation, sockets and ctypes (defence in depth: seccomp and the namespaces are
    the boundary). The event sets are constants of this code object, which cannot be swapped."""
    if event in {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
                 "socket.__new__", "ctypes.dlopen", "ctypes.cdata", "sys.remote_exec", "pty.spawn", "os.kill",
                 "os.killpg", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit"}:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0].split(".")[0] in {"ctypes", "_ctypes", "_posixsubprocess", "socket", "_socket"}:
        raise PermissionError(f"sandbox: module {args[0]} is not available")
    if event == "object.__setattr__" and args[1] == "__code__":
        raise PermissionError("sandbox: replacing a function's code is not allowed")


def main():
    config = json.loads(sys.argv[1])
    _drop_privileges(config["uid"], config["gid"])
    _set_limits(config)
    sys.path[:0] = [_HERE] + config["packages"]
    import plain  # noqa: E402 (after the path is set)

    requests, replies = config["requests"], config["replies"]
    start = json.loads(_read_frame(requests))
    program, entry = start["program"], start.get("entry")
    if config["mode"] == "stdin":
        sys.addaudithook(_audit_hook)
        os.close(requests), os.close(replies)
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(program, "solution.py", "exec"), namespace)
        return
    # calls mode: stdin is empty, the program's prints go to its own stdout, never to `replies`
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    sys.addaudithook(_audit_hook)
    try:
        exec(compile(program, "solution.py", "exec"), namespace)
        target = _resolve(namespace, entry)
        status = "ok"
    except BaseException as err:  # noqa: BLE001 - any failure to load is reported, not raised
        target, status = None, f"load error: {type(err).__name__}: {str(err)[:200]}"
    _write_frame(replies, plain.encode([status, None, None]).encode())
    classes = {k: v for k, v in namespace.items() if isinstance(v, type)}
    while target is not None:
        frame = _read_frame(requests)
        if frame is None:
            return
        try:
            args, kwargs = plain.decode(frame, classes)
            result = target(*args, **kwargs)
            reply = plain.encode(["ok", result, [args, kwargs]])
        except BaseException as err:  # noqa: BLE001 - the candidate's exception is its answer
            reply = plain.encode([f"error: {type(err).__name__}: {str(err)[:200]}", None, None])
        try:
            sys.stdout.flush()
        except BaseException:  # noqa: BLE001
            pass
        _write_frame(replies, reply.encode())


def _resolve(namespace, entry):
    """`Solution().name` when the program defines `entry["class"]`, else the top-level function."""
    owner = entry.get("class")
    if owner and owner in namespace:
        return getattr(namespace[owner](), entry["name"])
    if entry["name"] in namespace:
        return namespace[entry["name"]]
    raise NameError(f"the program defines no {owner + '.' + entry['name'] if owner else entry['name']}")


if __name__ == "__main__":
    main()
