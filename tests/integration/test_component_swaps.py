"""Every config of the constraint, classifier and advantage groups runs an RL step."""

from __future__ import annotations

from pathlib import Path

import pytest

from archer.train import config_dir

GROUPS = ("constraint", "classifier", "advantage")
CASES = [(g, p.stem) for g in GROUPS for p in sorted((Path(config_dir()) / g).glob("*.yaml"))]


@pytest.mark.parametrize("group, name", CASES, ids=[f"{g}={n}" for g, n in CASES])
def test_swapping_a_component_from_the_command_line_runs_a_step(run, tiny_model_dir, group, name):
    summary, run_dir = run([f"{group}={name}", f"model.path={tiny_model_dir}", "model.dtype=float32",
                            "filter=keep_all", "rl.steps=1", "export=false"], name=f"{group}-{name}")
    assert summary["rl_steps"] == 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_user_defined_strategy_from_experiments_examples_runs_a_step(run, tiny_model_dir):
    """The README's "Add your own constraint" example: a subclass outside the package."""
    summary, _ = run(["constraint=uniform",
                      "constraint._target_=experiments.examples.reasoning_focus.ReasoningFocusConstraint",
                      f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.steps=1",
                      "export=false", "logger=csv"], name="user-constraint")
    assert summary["rl_steps"] == 1 and summary["constraint"].endswith("ReasoningFocusConstraint")


def test_user_defined_strategy_masks_knowledge_tokens_of_negative_responses():
    import torch

    from archer.types import PolicyBatch
    from experiments.examples.reasoning_focus import ReasoningFocusConstraint

    logprobs = torch.zeros(2, 3, requires_grad=True)
    batch = PolicyBatch(logprobs=logprobs, old_logprobs=torch.zeros(2, 3), ref_logprobs=None,
                        advantages=torch.tensor([1.0, -1.0]), response_mask=torch.ones(2, 3, dtype=torch.bool),
                        high_entropy=torch.tensor([[True, False, False], [True, False, False]]),
                        num_tokens=None, num_sequences=None)
    ReasoningFocusConstraint(kl_coef=0.0)(batch).loss.backward()
    # response 0 (positive): every token has gradient; response 1: only its reasoning token
    assert (logprobs.grad != 0).tolist() == [[True, True, True], [True, False, False]]
