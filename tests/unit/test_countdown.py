"""The Countdown testbed task: its generator and its verifier (archer/data/countdown.py, verifiers/countdown.py)."""

from __future__ import annotations

import pytest

from archer.config_checks import ConfigError
from archer.data.countdown import CountdownTask, chains
from archer.types import Sample
from archer.verifiers.countdown import CountdownVerifier

PROBLEM = Sample("p", "3 7 2 to 8", 8, {"numbers": [3, 7, 2]})
VERIFY = CountdownVerifier()


def test_chains_group_every_allowed_chain_by_its_value():
    found = chains([3, 7, 2], "+-")
    # 3 numbers: 6 orders x 4 operator pairs, minus chains that go below zero
    assert "7+3=10\n10-2=8" in found[8] and "3-2=1\n1+7=8" in found[8]
    assert all(value >= 0 for value in found)
    assert "2-3=" not in "".join(r for rs in found.values() for r in rs)  # no step below zero
    assert max(found) == 12 and 0 not in found  # 3+7+2, and nothing reaches 0 with + -


def test_gold_derivations_score_one_and_the_problem_text_alone_is_enough():
    for response in ("7+3=10\n10-2=8", "3-2=1\n7+1=8", "7-3=4\n2*4=8", "  7+3=10\n10-2=8\n"):
        assert VERIFY(response, PROBLEM) == 1.0, response
    # no info: the numbers are read from the problem text
    assert VERIFY("7+3=10\n10-2=8", Sample("q", "3 7 2 to 8", 8)) == 1.0
    # a later step may reuse a value made earlier, and the pool may hold equal numbers
    assert VERIFY("3+3=6\n6+3=9", Sample("r", "3 3 3 to 9", 9)) == 1.0
    assert VERIFY("5*4=20\n6*2=12\n20+12=32", Sample("s", "5 4 6 2 to 32", 32)) == 1.0


@pytest.mark.parametrize("response, why", [
    ("7+3=10\n10-2=9", "wrong value"),
    ("7+3=11\n11-3=8", "a wrong step value reused"),
    ("7+3=10\n10-3=7", "a number used twice, another unused"),
    ("7+3=10", "a number left unused"),
    ("7*2=14\n14-3=11\n11-3=8", "a number not available"),
    ("2-3=0\n0+7=7", "a step below zero"),
    ("8", "the bare target"),
    ("#8", "an answer line instead of steps"),
    ("7+3=10\n10-2=8\n8*1=8", "an extra step with a number not given"),
    ("7+3=10\n10-2=8\n7+3=10\n10-2=8", "the derivation written twice"),
    ("7+3=10\n10-2=8 or 7+1=8", "a hedge on the last line"),
    ("7+3=10\n10-2=8\nThe answer is 8", "trailing text"),
    ("7 + 3 = 10\n10 - 2 = 8", "spaces inside steps"),
    ("7/1=7\n7+3=10", "division is not an operator"),
    ("", "empty"),
    ("7+3=10\n" * 200 + "10-2=8", "a long response"),
    ("7+3=10\n\n10-2=8", "a blank line between steps"),
    ("07+3=10\n10-2=8", "a leading zero: not a copy of the given 7"),
    ("7+3=010\n10-2=8", "a value with a leading zero"),
    ("\u0667+\u0663=\u0661\u0660\n\u0661\u0660-\u0662=\u0668", "Arabic-Indic digits"),
    ("\uff17+\uff13=\uff11\uff10\n\uff11\uff10-\uff12=\uff18", "fullwidth digits"),
    ("7+3=10\r\n10-2=8", "a carriage return"),
    ("7+3=10\u202810-2=8", "a Unicode line separator"),
    ("7\u22123=4\n4*2=8", "a Unicode minus sign"),
    ("7+3=10\n10-2=8" + " " * 600, "padding beyond the length limit"),
])
def test_near_misses_and_hedges_score_zero(response, why):
    assert VERIFY(response, PROBLEM) == 0.0, why


def test_operators_are_restricted_to_the_configured_ones():
    plus_minus = CountdownVerifier(operators="+-")
    assert plus_minus("2*4=8\n8-3=5\n5+7=12", Sample("m", "2 4 3 7 to 12", 12)) == 0.0
    assert plus_minus("2+4=6\n6-3=3\n3+7=10", Sample("m", "2 4 3 7 to 10", 10)) == 1.0
    with pytest.raises(ValueError, match="operators"):
        CountdownVerifier(operators="+/")


def test_a_sample_that_is_not_a_countdown_problem_names_itself():
    with pytest.raises(ValueError, match="'bad'.*Countdown"):
        VERIFY("1+1=2", Sample("bad", "What is 1+1?", 2))


def test_generated_splits_are_disjoint_solvable_and_the_teacher_is_as_accurate_as_configured():
    task = CountdownTask(train_size=400, heldout_size=50, teacher_accuracy=0.5, seed=7)
    assert len(task.train) == 400 and len(task.heldout) == 50
    problems = [s.problem for s in task.train + task.heldout]
    assert len(set(problems)) == len(problems)
    for sample in task.train + task.heldout:
        assert 3 <= len(sample.info["numbers"]) <= 4 and 0 <= sample.answer <= 99
        assert VERIFY(sample.info["solution"], sample) == 1.0  # every problem has a solution
        assert sample.info["solutions"] >= 1
    taught = sum(VERIFY(s.info["demonstration"], s) for s in task.train) / len(task.train)
    # half the demonstrations are solutions, and a random chain sometimes hits the target too
    assert 0.5 <= taught <= 0.7
    assert CountdownTask(train_size=400, heldout_size=50, seed=7).train[5] == task.train[5]  # its own seed fixes it
    perfect = CountdownTask(train_size=100, heldout_size=0, teacher_accuracy=1.0, seed=1)
    assert all(VERIFY(s.info["demonstration"], s) == 1.0 for s in perfect.train)


@pytest.mark.parametrize("bad, key", [({"min_numbers": 1}, "min_numbers"), ({"operators": "+/"}, "operators"),
                                      ({"teacher_accuracy": 1.5}, "teacher_accuracy"),
                                      ({"max_number": 1, "max_target": 0, "min_numbers": 2, "max_numbers": 2,
                                        "operators": "+", "train_size": 5}, "distinct Countdown problems")])
def test_bad_settings_name_the_key(bad, key):
    with pytest.raises(ConfigError, match=key):
        CountdownTask(**{"train_size": 10, "heldout_size": 2, **bad})
