"""Math answers: the last \\boxed{} after `</think>`, compared with the gold answer.

Stages, cheapest first (the string-level pieces are in archer/verifiers/answer_forms.py):
1. hedges score 0: an answer that offers alternatives the gold does not (`5 \\text{ or } 6`,
   `5 \\lor 6`, `5 \\pm 1`, `42 \\text{ if } n \\text{ even}`), a chain of relations whose sides
   disagree (`x = 5 = 6`), or a chain longer than three sides;
2. a normalised string match (spacing, `\\dfrac`, `\\left(`, degrees, `\\%`, `\\text{}` units,
   trailing dots); when both sides are plain numbers (leading zeros, thousands separators
   without spaces, percentages, scientific notation, `\\frac{a}{b}`, `a/b`), an exact comparison
   for integers and a relative 1e-6 one otherwise (`0.0833333333333333` equals `\\frac{1}{12}`,
   `0.08` does not); plain numbers never reach the symbolic parser. `32, 349` is a list,
   never `32349`;
3. a complexity guard: oversized answers, deep nesting, power towers and big factorials
   score 0 without reaching the symbolic parser (sympy would try to evaluate them);
4. math-verify (`parse` + `verify` on both gold and prediction) for fractions, intervals, sets,
   tuples, matrices and equivalent expressions, under its own timeout. A gold it reads as a
   bare number although it holds variables (it misread the gold) accepts nothing here.
"""

from __future__ import annotations

import threading

from archer.config_checks import check_choice, check_positive
from archer.types import Sample
from archer.verifiers.answer_forms import (
    as_number,
    has_variables,
    is_hedge,
    is_label,
    normalise,
    numbers_equal,
    split_relations,
    too_complex,
    unbox,
)
from archer.verifiers.extract import after_think, final_stated_number, last_boxed

__all__ = ["MathVerifier", "answers_equal", "as_number", "normalise", "too_complex"]

# Only the tail of a response is searched for the final answer.
SCAN_CHARS = 20_000
# boxed: only a \boxed{} answer counts (the paper's reader). boxed_or_stated_number: without a
# box, the one number after the last "the answer is" / "answer:" / "final answer" / "####"
# (for small models that rarely box); more lenient, so easier to game (docs/rewards.md)
ANSWER_READERS = ("boxed", "boxed_or_stated_number")
# `x = 2 + 3 = 5` is an answer; a longer chain is not (and each side would be parsed).
MAX_SIDES = 3


def answers_equal(predicted: str, gold: str, timeout_seconds: int = 5) -> bool:
    """True when `predicted` and `gold` denote the same answer (see the module docstring)."""
    # one line (math-verify misreads answers spread over lines); a `$` inside an answer joins parts
    predicted = " ".join(unbox(predicted).replace("$", " ").split())
    gold = " ".join(str(gold).replace("$", " ").split())
    if is_hedge(predicted, gold):
        return False
    sides, gold_sides = split_relations(predicted), split_relations(gold)
    if len(sides) > MAX_SIDES:
        return False
    if len(gold_sides) > 1 and not (len(gold_sides) == 2 and is_label(gold_sides[0])):
        # an equation (`x^2 + y^2 = 1`) is compared whole, side for side
        return len(sides) == len(gold_sides) and _values_equal(predicted, gold, timeout_seconds)
    label = gold_sides[0] if len(gold_sides) == 2 else None  # `y = 2x + 3`: a name and its value
    gold = gold_sides[-1]
    # `5`, `x = 5`, `2 + 3 = 5`: the first side may name the answer (the gold's own name, if it has
    # one); every other side must equal the gold's value
    first, rest = sides[0], sides[1:]
    if rest and (normalise(first) == normalise(label) if label else is_label(first)):
        return all(_values_equal(side, gold, timeout_seconds) for side in rest)
    return all(_values_equal(side, gold, timeout_seconds) for side in sides)


def _values_equal(predicted: str, gold: str, timeout_seconds: int) -> bool:
    if not predicted.strip():
        return False
    if normalise(predicted) == normalise(gold):
        return True
    p, g = as_number(predicted), as_number(gold)
    if p is not None and g is not None:
        return numbers_equal(p, g)
    if too_complex(predicted):
        return False
    from math_verify import parse, verify

    # math-verify's timeout uses SIGALRM, which exists only in the main thread.
    limit = timeout_seconds if threading.current_thread() is threading.main_thread() else None
    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=limit)
        if gold_parsed and _is_number(gold_parsed[0]) and has_variables(gold):
            return False  # the parser kept a fragment of the gold (`\\hbar \\omega(...)` read as 2)
        predicted_parsed = parse(f"${predicted}$", parsing_timeout=limit)
        return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=limit))
    except Exception:  # a parser failure or timeout means "not shown equal"
        return False


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) or bool(getattr(value, "is_Number", False))


class MathVerifier:
    """1.0 when the last boxed answer equals the gold answer (any of them, for a list).

    Args:
        think_only_after: grade only the text after the first `</think>` (the reference).
        timeout_seconds: math-verify's limit per parse / comparison.
        max_answer_chars: longer boxed answers score 0 without parsing.
        answer_reader: "boxed" (the reference) or "boxed_or_stated_number" (see ANSWER_READERS).

    Example:
        >>> MathVerifier()("so \\\\boxed{\\\\frac{1}{2}}", Sample("a", "?", "0.5"))
        1.0
    """

    # sympy can hang in C code where no signal reaches it: the scoring runner isolates it.
    isolated = True

    def __init__(self, think_only_after: bool = True, timeout_seconds: int = 5, max_answer_chars: int = 1000,
                 answer_reader: str = "boxed"):
        check_positive("verifier.timeout_seconds", timeout_seconds)
        check_positive("verifier.max_answer_chars", max_answer_chars)
        self.think_only_after, self.timeout_seconds, self.max_answer_chars = think_only_after, int(timeout_seconds), max_answer_chars
        self.answer_reader = check_choice("verifier.answer_reader", answer_reader, ANSWER_READERS)

    def extract(self, response: str, sample: Sample | None = None) -> str | None:
        """The graded answer: the last boxed expression; with `answer_reader=boxed_or_stated_number`
        and no box, the one number after the last answer phrase (`final_stated_number`); or None."""
        text = (after_think(response) if self.think_only_after else response)[-SCAN_CHARS:]
        boxed = last_boxed(text)
        if boxed is None and self.answer_reader == "boxed_or_stated_number":
            return final_stated_number(text)
        return boxed

    def vote_key(self, answer: str) -> str:
        """Answers that are spelled differently but obviously equal share a key (majority vote)."""
        number = as_number(answer)
        return str(number) if number is not None else normalise(answer)

    def __call__(self, response: str, sample: Sample) -> float:
        predicted = self.extract(response)
        if predicted is None or not predicted.strip() or len(predicted) > self.max_answer_chars:
            return 0.0
        golds = sample.answer if isinstance(sample.answer, (list, tuple)) else [sample.answer]
        return float(any(answers_equal(predicted, str(gold), self.timeout_seconds) for gold in golds))
