"""LogicVerifier: roles read from Logic-RL answers and free-form statements."""

import pytest

from archer.types import Sample
from archer.verifiers import LogicVerifier
from archer.verifiers.logic import gold_roles, stated_roles

GOLD = {"Zoey": "knave", "Oliver": "knight"}
SAMPLE = Sample("kk", "?", GOLD)


@pytest.mark.parametrize(("response", "score"), [
    ("<think>...</think><answer>(1) Zoey is a knave\n(2) Oliver is a knight</answer>", 1.0),
    ("So Zoey is a knave and Oliver is a knight.", 1.0),
    ("Zoey: knave\nOliver: Knight", 1.0),
    ("Zoey - a knave, Oliver - a knight", 1.0),
    # a role tried and then revised: the last statement counts
    ("Suppose Zoey is a knight... contradiction, so Zoey is a knave. Oliver is a knight.", 1.0),
    ("<answer>(1) Zoey is a knight\n(2) Oliver is a knight</answer>", 0.0),
    ("<answer>(1) Zoey is a knave</answer>", 0.0),  # Oliver missing
    ("Zoey is a knave.", 0.0),
    # only the answer block is graded when there is one
    ("Zoey is a knave, Oliver is a knight. <answer>Zoey is a knight, Oliver is a knight</answer>", 0.0),
    # the thinking does not count
    ("<think>Zoey is a knave and Oliver is a knight</think> I am not sure", 0.0),
    ("", 0.0),
])
def test_responses(response, score):
    assert LogicVerifier()(response, SAMPLE) == score


def test_names_sharing_a_prefix_are_kept_apart():
    gold = {"Jack": "knight", "Jackson": "knave"}
    assert stated_roles("Jackson is a knave. Jack is a knight.", list(gold)) == gold


def test_gold_from_logic_rl_text_and_tags_option():
    assert gold_roles("(1) Zoey is a knave\n(2) Oliver is a knight") == GOLD
    text_gold = Sample("kk", "?", "(1) Zoey is a knave\n(2) Oliver is a knight")
    assert LogicVerifier()("Zoey is a knave, Oliver is a knight", text_gold) == 1.0
    assert LogicVerifier(require_answer_tags=True)("Zoey is a knave, Oliver is a knight", SAMPLE) == 0.0
    with pytest.raises(ValueError, match="cannot read roles"):
        gold_roles("nobody")


@pytest.mark.parametrize("response", [
    # both roles for one person
    "<answer>(1) Zoey is a knave or a knight\n(2) Oliver is a knight</answer>",
    "<answer>(1) Zoey is a knave/knight\n(2) Oliver is a knight</answer>",
    "<answer>(1) Zoey is a knave (maybe a knight)\n(2) Oliver is a knight</answer>",
    "<answer>(1) Zoey is a knight\n(2) Zoey is a knave\n(3) Oliver is a knight</answer>",
    "Zoey is a knave or a knight, and Oliver is a knight.",
    # extra role statements in the answer: one role word per person, as Logic-RL requires
    "<answer>(1) Zoey is a knave\n(2) Oliver is a knight\n(3) Bob is a knave</answer>",
    "<answer>(1) Zoey is a knave\n(2) Oliver is a knight, or maybe a knave</answer>",
    # words that offer the other assignment, in the block or after it
    "<answer>Zoey is a knave and Oliver is a knight, or the other way round.</answer>",
    "<answer>Zoey is a knave, Oliver is a knight (or vice versa)</answer>",
    "<answer>Zoey is a knave\nOliver is a knight</answer>\nAlternatively: Zoey is a knight, Oliver is a knave",
    "<answer>Zoey is a knave, Oliver is a knight</answer> Other possibility: Zoey is a knight.",
    "<answer>Zoey is a k-n-i-g-h-t or Zoey is a knave, Oliver is a knight</answer>",
    # free text: the last statement's sentence hedges
    "Zoey is a knight. Or maybe Zoey is a knave. Oliver is a knight.",
    "Zoey is a knight / Zoey is a knave; Oliver is a knight",
    # two answer blocks: only the last is graded, so a right first block does not help
    "<answer>(1) Zoey is a knave\n(2) Oliver is a knight</answer> or <answer>(1) Zoey is a knight\n(2) Oliver is a knave</answer>",
])
def test_hedges_score_zero(response):
    assert LogicVerifier()(response, SAMPLE) == 0.0
    assert LogicVerifier().extract(response, SAMPLE) in (None, "Zoey=knight; Oliver=knave")


def test_the_last_of_two_answer_blocks_is_graded():
    wrong_then_right = "<answer>(1) Zoey is a knight\n(2) Oliver is a knave</answer><answer>(1) Zoey is a knave\n(2) Oliver is a knight</answer>"
    assert LogicVerifier()(wrong_then_right, SAMPLE) == 1.0
