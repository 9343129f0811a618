"""Lightning callbacks of the training run."""

from __future__ import annotations

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
            trainer.save_checkpoint(self.dirpath / f"step-{step:06d}.ckpt")
            trainer.save_checkpoint(self.dirpath / "last.ckpt")
