"""Rewards with several parts, user functions and signed rewards: what is scored, logged and clipped."""

from __future__ import annotations

import pytest
import torch

from archer.advantages import GRPOAdvantage
from archer.config_checks import ConfigError
from archer.types import Sample
from archer.verifiers import (
    AnswerLineFormat,
    ArithmeticVerifier,
    BoxedFormat,
    FunctionReward,
    ScoringRunner,
    ThinkClosedFormat,
    WeightedReward,
)

SAMPLE = Sample("a", "2+3", 5)


class Overshoot:
    """A buggy part that scores 3.0: clipped to its (0, 1) range before weighting."""

    def __call__(self, response, sample):
        return 3.0


def weighted(**extra) -> WeightedReward:
    return WeightedReward({"correct": {"verifier": ArithmeticVerifier(), "weight": 1.0},
                           "format": {"verifier": AnswerLineFormat(), "weight": 0.2}, **extra})


def test_parts_are_weighted_and_clipped_to_their_own_range():
    reward = weighted(bug={"verifier": Overshoot(), "weight": -0.5})
    assert reward.components("2+3=5\n#5", SAMPLE) == {"correct": 1.0, "format": 1.0, "bug": 1.0}
    assert reward("2+3=5\n#5", SAMPLE) == pytest.approx(1.0 + 0.2 - 0.5)
    assert reward("2+3=5\n#6", SAMPLE) == pytest.approx(0.2 - 0.5)  # formatted but wrong
    assert reward("five", SAMPLE) == pytest.approx(-0.5)  # a negative total is kept
    assert reward.accuracy_part == "correct" and isinstance(reward.accuracy_verifier, ArithmeticVerifier)


@pytest.mark.parametrize("workers", [0, 1])
def test_runner_logs_each_part_solved_count_and_trains_on_the_sum(workers):
    reward = weighted()
    responses = ["#5", "#6", "no answer", "2+3=5\n#5"]
    with ScoringRunner(reward, workers=workers, timeout=30) as runner:
        scores, metrics = runner(responses, [SAMPLE] * 4)
        assert scores.tolist() == pytest.approx([1.2, 0.2, 0.0, 1.2])
        assert metrics["reward/correct"] == pytest.approx(0.5) and metrics["reward/format"] == pytest.approx(0.75)
        assert metrics["reward/solved"] == 2.0 and metrics["reward/errors"] == 0.0
        # held-out evaluation grades with the correctness part alone
        grades, _ = runner.for_accuracy()(responses, [SAMPLE] * 4)
        assert grades.tolist() == [1.0, 0.0, 0.0, 1.0]
    with ScoringRunner(ArithmeticVerifier()) as plain:
        assert plain.for_accuracy() is plain


@pytest.mark.parametrize("workers", [0, 1])
def test_user_functions_give_signed_rewards_and_non_finite_values_are_errors(workers):
    signed = FunctionReward("tests.reward_functions.signed_parity")
    with ScoringRunner(signed, workers=workers, timeout=30) as runner:
        scores, metrics = runner(["ab", "abc"], [SAMPLE] * 2)
    assert scores.tolist() == [0.5, -1.0] and metrics["reward/errors"] == 0.0
    clipped = FunctionReward("tests.reward_functions.signed_parity", reward_range=[0.0, 1.0])
    assert ScoringRunner(clipped)(["abc"], [SAMPLE])[0].tolist() == [0.0]
    from functools import partial

    from tests.reward_functions import signed_parity

    built = FunctionReward(partial(signed_parity))  # what Hydra's _target_ + _partial_ builds
    with ScoringRunner(built, workers=workers, timeout=30) as runner:
        assert runner(["ab", "abc"], [SAMPLE] * 2)[0].tolist() == [0.5, -1.0]
    broken = FunctionReward("tests.reward_functions.not_a_number")
    with ScoringRunner(broken, workers=workers, timeout=30) as runner:
        scores, metrics = runner(["ab", "abc"], [SAMPLE] * 2)
    assert scores.tolist() == [1.0, 0.0] and metrics["reward/errors"] == 1.0


def test_a_negative_reward_flows_into_the_advantages():
    rewards = torch.tensor([0.5, -1.0, -1.0, 0.5])  # signed_parity's values, one group
    advantages = GRPOAdvantage()(rewards, torch.zeros(4, dtype=torch.long))
    # (R - mean) / std with mean -0.25 and unbiased std 0.866: the penalised responses go down
    assert advantages.tolist() == pytest.approx([0.866, -0.866, -0.866, 0.866], abs=1e-3)


def test_bad_configs_name_the_key():
    with pytest.raises(ConfigError, match="cannot be imported"):
        FunctionReward("no_such_module.reward")
    with pytest.raises(ConfigError, match="reward_range"):
        FunctionReward("tests.reward_functions.signed_parity", reward_range=[1.0, 0.0])
    with pytest.raises(ConfigError, match="accuracy_part"):
        WeightedReward({"correct": {"verifier": ArithmeticVerifier()}}, accuracy_part="speed")
    with pytest.raises(ConfigError, match="parts.x"):
        WeightedReward({"x": {"weight": 1.0}})


@pytest.mark.parametrize("response, boxed, closed", [
    ("<think>2+2</think> so \\boxed{4}", 1.0, 1.0),
    ("<think>2+2 \\boxed{4}", 1.0, 0.0),        # never closed: the boxed answer counts, the format not
    ("<think>a</think> \\boxed{}", 0.0, 1.0),    # an empty box
    ("<think>a</think>b</think> \\boxed{4}", 1.0, 0.0),  # closed twice
    ("<think>\\boxed{4}</think> nothing", 0.0, 1.0),  # the box sits inside the reasoning
])
def test_format_rewards(response, boxed, closed):
    sample = Sample("a", "2+2", "4")
    assert BoxedFormat()(response, sample) == boxed
    assert ThinkClosedFormat()(response, sample) == closed
