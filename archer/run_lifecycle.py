"""What a training run carries across processes and interruptions: its record in checkpoints,
the frozen reference stored once beside them, and ending cleanly on SIGTERM.

A mixin of `ArcherModule`, kept apart so the RL step reads on its own. It uses the module's
`rl_step`, `record`, `clock`, `reference`, `resume_path`, `collectives` and `trainer`.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import torch

from archer.config_checks import ConfigError

# the frozen reference's weights, written once per run next to its checkpoints
REFERENCE_FILE = "reference.pt"


class RunLifecycle:
    """Checkpoint hooks and SIGTERM handling of the training module."""

    def on_train_start(self) -> None:
        # Lightning's own SIGTERM handler runs a collective from inside the signal handler, at
        # whatever point each rank is: ranks would pair it with the wrong collective. Ours only
        # sets a flag, and every rank agrees at the end of the RL step (`_stop_if_terminated`).
        self.sigterm_received = False
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        self.sigterm_received = True

    def _stop_if_terminated(self) -> None:
        """After a SIGTERM on any rank: every rank stops after this RL step, its checkpoint is saved."""
        flag = torch.tensor(float(getattr(self, "sigterm_received", False)))
        if self.collectives.max(flag, "stop request").item() > 0:
            self.stopped_by = f"SIGTERM after RL step {self.rl_step - 1}"
            self.trainer.should_stop = True


    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from archer.export import tokenizer_snapshot
        from archer.lora import lora_metadata

        # the frozen reference never changes: stored once beside the checkpoints (archer/callbacks.py)
        for key in [k for k in checkpoint["state_dict"] if k.startswith("reference.")]:
            del checkpoint["state_dict"][key]
        checkpoint["archer"] = {
            "rl_step": self.rl_step,
            "policy_config": self.policy.config.to_dict(),
            "lora": lora_metadata(self.policy),  # how archer-export merges the adapter (None: no LoRA)
            "tokenizer_files": tokenizer_snapshot(self.tokenizer),
            "reference_file": REFERENCE_FILE if self.reference is not None else None,
            # what the summary of a resumed run reports: the original before-RL figures, total time
            "record": {**self.record, "seconds": self.record.get("seconds", 0.0) + time.perf_counter() - self.clock},
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "archer" not in checkpoint:
            raise ConfigError("ckpt_path is a Lightning checkpoint but not an Archer one (no 'archer' entry)")
        self.rl_step = int(checkpoint["archer"]["rl_step"])
        self.record = dict(checkpoint["archer"].get("record", {}))  # seconds: run time up to that checkpoint
        name = checkpoint["archer"].get("reference_file")
        if self.reference is not None and name and not any(k.startswith("reference.") for k in checkpoint["state_dict"]):
            path = (self.resume_path.parent if self.resume_path else Path(".")) / name
            if not path.is_file():
                raise ConfigError(f"{path}: the run's frozen reference model is missing; it is written once next to "
                                  "the checkpoints: keep the whole checkpoints/ folder together when moving a run")
            weights = torch.load(path, map_location="cpu", weights_only=True)
            checkpoint["state_dict"].update({f"reference.{k}": v for k, v in weights.items()})
