"""Lightning callbacks of the training run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lightning as L
import torch

from archer.config_checks import ConfigError
from archer.run_lifecycle import REFERENCE_FILE


class RLStepCheckpoint(L.Callback):
    """Save `step-XXXXXX.ckpt` every N RL steps, at the end, and when the run is stopped early
    (SIGTERM); `last.ckpt` is a hard link to the newest (no second write).

    Lightning's ModelCheckpoint counts optimizer steps, of which one RL step makes many;
    this one counts RL steps, the unit users reason in. Checkpoints hold the policy and the
    optimizer state; the frozen reference model, which never changes, is written once beside
    them (`reference.pt`). Files are written aside and renamed, so a run killed while saving
    never leaves half a checkpoint.

    Args:
        dirpath: where checkpoints go.
        every_n_steps: save period in RL steps (0: only at the end).
        keep_last: keep this many step checkpoints, deleting older ones (0: keep all).
    """

    def __init__(self, dirpath: str | Path, every_n_steps: int = 0, keep_last: int = 0):
        if keep_last < 0:
            raise ConfigError(f"checkpoint.keep_last must be >= 0 (0 keeps every step checkpoint), got {keep_last}")
        self.dirpath, self.every_n_steps, self.keep_last = Path(dirpath), int(every_n_steps), int(keep_last)

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # one epoch = one RL step
        step = pl_module.rl_step
        if (step == pl_module.schedule.steps or trainer.should_stop
                or (self.every_n_steps and step % self.every_n_steps == 0)):
            self.save(trainer, pl_module, step)

    def save(self, trainer, pl_module, step: int) -> Path:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        reference = self.dirpath / REFERENCE_FILE
        if pl_module.reference is not None and trainer.is_global_zero and not reference.exists():
            _atomic(reference, lambda path: torch.save(pl_module.reference.state_dict(), path))
        target = self.dirpath / f"step-{step:06d}.ckpt"
        partial = self.dirpath / f".{target.name}.partial"
        trainer.save_checkpoint(partial, weights_only=False)  # every rank takes part (sharded states)
        if trainer.is_global_zero:
            os.replace(partial, target)
            _atomic(self.dirpath / "last.ckpt", lambda path: _link_or_copy(target, path))
            self._prune()
        trainer.strategy.barrier()
        return target

    def _prune(self) -> None:
        if not self.keep_last:
            return
        steps = sorted(self.dirpath.glob("step-*.ckpt"))
        for old in steps[: -self.keep_last]:
            old.unlink(missing_ok=True)  # last.ckpt is its own link to the newest


def _atomic(final: Path, write) -> None:
    partial = final.with_name(f".{final.name}.partial")
    partial.unlink(missing_ok=True)
    write(partial)
    os.replace(partial, final)


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, destination)


class ValidationLoop(L.Callback):
    """Every N RL steps, evaluate on held-out sets and log `val/<set>/avg@k`, `val/<set>/pass@k`
    (and `maj@k`, response length, repetition), the same metrics `archer-eval` reports.

    Args:
        sets: name -> problems (`Sample`s); "heldout" is the task's own held-out split.
        template, verifier: how prompts are built and responses scored (the run's own).
        scorer: the run's ScoringRunner.
        engine: a rollout engine at the evaluation temperature.
        every_n_steps: period in RL steps (0: off); the last step is always validated.
        k: samples per problem.
        seed: evaluation seed (the same problems and sampling streams at every validation).
    """

    def __init__(self, sets: dict, template, verifier, scorer, engine, every_n_steps: int, k: int = 4, seed: int = 0):
        self.sets, self.template, self.verifier, self.scorer, self.engine = sets, template, verifier, scorer, engine
        self.every_n_steps, self.k, self.seed = int(every_n_steps), int(k), seed
        self.history: list[dict] = []

    def on_train_start(self, trainer, pl_module) -> None:
        if self.every_n_steps and pl_module.rl_step == 0:  # the starting point of every curve
            self._validate(pl_module, trainer)

    def state_dict(self) -> dict:
        return {"history": self.history}  # a resumed run keeps the curve from before the checkpoint

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # one epoch = one RL step
        step = pl_module.rl_step
        if self.every_n_steps and (step % self.every_n_steps == 0 or step == pl_module.schedule.steps):
            self._validate(pl_module, trainer)

    def _validate(self, pl_module, trainer) -> None:
        from archer.evaluation import evaluate_benchmark, summarize

        step = pl_module.rl_step
        logged = {"rl_step": step}
        for name, problems in self.sets.items():
            records = evaluate_benchmark(pl_module.policy, pl_module.tokenizer, self.template, self.engine, self.scorer,
                                         self.verifier, name, problems, self.k, self.seed, problems_per_chunk=len(problems))
            row = summarize(records, self.k, self.verifier, bootstrap_samples=100, seed=self.seed)
            for metric in (f"avg@{self.k}", f"pass@{self.k}", f"maj@{self.k}", "repetition@20", "truncated"):
                if metric in row:
                    logged[f"val/{name}/{metric}"] = row[metric]
            logged[f"val/{name}/response_tokens"] = row["response_tokens"]["mean"]
        values = {key: value for key, value in logged.items() if key != "rl_step"}
        # every rank evaluates the same problems with the same seeds; loggers write on rank zero,
        # at the RL step like the training metrics
        for logger in trainer.loggers:
            logger.log_metrics(values, step=step)
        self.history.append(logged)
