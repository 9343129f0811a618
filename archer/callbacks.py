"""Lightning callbacks of the training run."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L


class RLStepCheckpoint(L.Callback):
    """Save `step-XXXXXX.ckpt` and `last.ckpt` every N RL steps and at the end.

    Lightning's ModelCheckpoint counts optimizer steps, of which one RL step makes many;
    this one counts RL steps, the unit users reason in.

    Args:
        dirpath: where checkpoints go.
        every_n_steps: save period in RL steps (0: only at the end).
    """

    def __init__(self, dirpath: str | Path, every_n_steps: int = 0):
        self.dirpath, self.every_n_steps = Path(dirpath), int(every_n_steps)

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # one epoch = one RL step
        step = pl_module.rl_step
        if step == pl_module.schedule.steps or (self.every_n_steps and step % self.every_n_steps == 0):
            self.dirpath.mkdir(parents=True, exist_ok=True)
            for name in (f"step-{step:06d}.ckpt", "last.ckpt"):
                # written aside, then renamed: a run killed while saving never leaves half a file
                partial = self.dirpath / f".{name}.partial"
                trainer.save_checkpoint(partial, weights_only=False)
                if trainer.is_global_zero:
                    os.replace(partial, self.dirpath / name)
            trainer.strategy.barrier()


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
