"""Where an in-process vLLM engine runs: this rank's variables for vLLM's external launcher,
the process group made before vLLM makes its own, and the supported vLLM releases. Tested on
CPU (tests/unit/test_vllm_engine.py); the engine is archer/rollout/vllm.py."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from collections.abc import Callable, Mapping

import torch

from archer.config_checks import ConfigError

INSTALL = 'pip install "archer-rlvr[vllm]"'
# The vLLM releases whose sources this engine was written against (pyproject's `vllm` extra):
# processed log-probs include the temperature from 0.10.2 on; the cap is the newest release read.
OLDEST_VLLM, NEWEST_VLLM_READ = "0.10.2", "0.33"
# The trainer configs' strategy timeout: a process group this engine creates is the one the
# trainer then uses (Lightning keeps a group it finds), so it must wait as long as theirs.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=60)

def rank_environment(environ: Mapping[str, str], process_group: tuple[int, int] | None,
                     free_port: Callable[[], int]) -> dict[str, str]:
    """The variables vLLM's external launcher reads in this process: RANK and LOCAL_RANK (the
    GPU is `cuda:LOCAL_RANK`), WORLD_SIZE, and MASTER_ADDR / MASTER_PORT when the process group
    does not exist yet.

    Args:
        environ: the process environment (torchrun sets all five on every rank).
        process_group: (rank, world size) of the existing default process group, or None.
        free_port: a free local port, for a single process without MASTER_PORT.
    """
    launch = ("launch each rank with torchrun (e.g. `torchrun --nproc-per-node 8 -m archer.train ... trainer=ddp "
              "trainer.devices=8 rollout=vllm`), which sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT")
    if process_group is not None:
        rank, world = process_group
    else:
        world = int(environ.get("WORLD_SIZE", "1"))
        if world == 1 and int(environ.get("SLURM_NTASKS", "1")) > 1:
            raise ConfigError(f"rollout=vllm under srun with {environ['SLURM_NTASKS']} tasks but no WORLD_SIZE: "
                              f"every rank would build a one-process engine world; {launch} (srun ... torchrun ...)")
        if world > 1 and "RANK" not in environ:
            raise ConfigError(f"rollout=vllm on {world} processes needs RANK in each process before its engine "
                              "starts (Lightning's own launcher starts the other ranks only at fit, after this "
                              f"one's engine exists); {launch}")
        rank = int(environ.get("RANK", "0"))
    local = environ.get("LOCAL_RANK", environ.get("SLURM_LOCALID"))
    if local is None and world > 1:
        raise ConfigError(f"rollout=vllm on {world} processes needs LOCAL_RANK (which GPU is this rank's); {launch}")
    env = {"RANK": str(rank), "LOCAL_RANK": str(local or 0), "WORLD_SIZE": str(world)}
    if process_group is None:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in environ]
        if world > 1 and missing:
            raise ConfigError(f"rollout=vllm on {world} processes needs {' and '.join(missing)}; {launch}")
        env["MASTER_ADDR"] = environ.get("MASTER_ADDR", "127.0.0.1")
        env["MASTER_PORT"] = environ.get("MASTER_PORT") or str(free_port())
    return env


def check_same_world(started: int, now: int) -> None:
    """The engine was built for a world of `started` processes; refuse to go on in another."""
    if started != now:
        raise ConfigError(
            f"rollout=vllm: this process built its engine as one of {started} process(es), but the run now has "
            f"{now}: Lightning's own launcher starts the other ranks at fit, after the held-out evaluation built "
            "this engine (and its one-process group). Launch every rank with torchrun instead, e.g. "
            "`torchrun --nproc-per-node 8 -m archer.train ... trainer=ddp trainer.devices=8 rollout=vllm`")


def check_vllm_version(version: str) -> str | None:
    """ConfigError below the oldest supported release; a note (returned) above the newest read."""
    from packaging.version import Version

    found = Version(version)
    if found < Version(OLDEST_VLLM):
        raise ConfigError(f"rollout=vllm needs vLLM >= {OLDEST_VLLM} (log-probs after temperature scaling), found "
                          f"{version}: {INSTALL}")
    if found.release[:2] > Version(NEWEST_VLLM_READ).release[:2]:
        return (f"[archer] vLLM {version} is newer than the releases this engine was written against "
                f"(<= {NEWEST_VLLM_READ}.x); run experiments/gpu_check.sh once to confirm it")
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def scoped_environ(values: dict[str, str]):
    """`values` in os.environ while vLLM is built (it reads them then), the previous state after,
    so the trainer's launcher still sees its own environment."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def join_process_group(env: dict[str, str]) -> None:
    """Several processes: create the default process group from torchrun's variables before
    vLLM does. vLLM would make a one-process group here (its world is the engine's, one GPU),
    and Lightning later keeps whatever group exists."""
    import torch.distributed as dist

    if int(env["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", init_method="env://",
                                rank=int(env["RANK"]), world_size=int(env["WORLD_SIZE"]),
                                timeout=PROCESS_GROUP_TIMEOUT)


def current_process_group() -> tuple[int, int] | None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def world_size_now() -> int:
    """The run's process count: the launcher's WORLD_SIZE first (Lightning's own launcher sets it in
    this process when it starts the others), else the process group's, else 1."""
    if "WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    group = current_process_group()
    return group[1] if group else 1
