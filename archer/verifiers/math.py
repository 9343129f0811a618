"""Math answers: the last \\boxed{} after `</think>`, compared with the gold answer.

Stages, cheapest first:
1. hedges score 0: an answer that offers alternatives the gold does not (`5 \\text{ or } 6`,
   `5 \\lor 6`, `5 \\pm 1`), or a chain of equalities whose sides disagree (`x = 5 = 6`);
2. a normalised string match (spacing, `\\dfrac`, `\\left(`, degrees, `\\%`, `\\text{}` units,
   trailing dots) and an exact numeric match (leading zeros, thousands separators without
   spaces, percentages, scientific notation). Unequal integers are different answers; any
   other unequal pair goes on to math-verify, whose numeric precision decides
   (`0.0833333333333333` equals `\\frac{1}{12}`). `32, 349` is a list, never `32349`;
3. a complexity guard: oversized answers, deep brace nesting and power towers score 0
   without reaching the symbolic parser (sympy would try to evaluate `10^{10^{10^{10}}}`);
4. math-verify (`parse` + `verify` on both gold and prediction) for fractions, intervals, sets,
   tuples, matrices and equivalent expressions, under its own timeout.
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction

from archer.types import Sample
from archer.validation import check_positive
from archer.verifiers.extract import after_think, last_boxed

# Only the tail of a response is searched for the final answer.
SCAN_CHARS = 20_000

# spacing commands and whitespace; `\\\\` (a LaTeX row break) is matched first so it is kept whole
_SPACES = re.compile(r"(\\\\)|\\[,;:! ]|\\quad|\\qquad|\s+")
_TEXT_UNIT = re.compile(r"\\(?:text|mbox|mathrm|textbf)\{\s*([^{}]*)\}")
_DEGREES = re.compile(r"\^\{?\\circ\}?|°|\\degree")
_POWER_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\d\s*\^|\^\s*\{?\s*\d{5,}|\d{4,}\s*!")
_SCI = re.compile(r"^(-?\d+(?:\.\d+)?)(?:\\times|\\cdot|\*|x)10\^\{?(-?\d{1,3})\}?$")
_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d{1,3})?$")
# A comma followed by spacing separates list items; only `1,000` is a thousands separator.
_LIST_COMMA = re.compile(r",(?:\s|\\[,;:! ]|\\q?quad)")
# Words and symbols that offer alternatives.
_DISJUNCTION = re.compile(r"\\lor(?![A-Za-z])|\\vee(?![A-Za-z])|\\pm(?![A-Za-z])|\\mp(?![A-Za-z])|"
                          r"(?<![A-Za-z\\])(?:or|either)(?![A-Za-z])", re.IGNORECASE)
_NESTED_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_RELATION = re.compile(r"=|\\approx(?![A-Za-z])")
_LABEL = re.compile(r"^\\?[A-Za-z]+(?:_\{?\w+\}?)?(?:\([A-Za-z, ]*\))?$")


def normalise(answer: str) -> str:
    """A canonical spelling: no spacing commands, `\\frac` for every fraction, no outer `$`."""
    text = answer.strip().strip("$").strip()
    text = _SPACES.sub(lambda m: m.group(1) or "", text)
    text = text.replace("\\left", "").replace("\\right", "").replace("dfrac", "frac").replace("tfrac", "frac")
    text = text.replace("\\displaystyle", "").replace("^{\\prime}", "'")
    text = _DEGREES.sub("", text)
    text = text.replace("\\%", "").replace("%", "")
    text = _TEXT_UNIT.sub(lambda m: m.group(1), text)
    return text.rstrip(".").strip()


def as_number(answer: str) -> Fraction | None:
    """The exact value of a plain number (`025`, `1,000`, `-3.50`, `1.2e-8`, `4\\times10^{5}`)."""
    if _LIST_COMMA.search(answer):
        return None
    text = normalise(answer)
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    match = _SCI.match(text)
    if match:
        try:
            return Fraction(match.group(1)) * Fraction(10) ** int(match.group(2))
        except (ValueError, ZeroDivisionError):
            return None
    frac = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}", text)
    if frac:
        if int(frac.group(3)) == 0:
            return None
        return Fraction(int(frac.group(2)), int(frac.group(3))) * (-1 if frac.group(1) else 1)
    if _NUMBER.match(text.lower()):
        try:
            return Fraction(text.lower())
        except (ValueError, ZeroDivisionError):
            return None
    return None


def too_complex(answer: str, max_chars: int = 1000, max_depth: int = 32) -> bool:
    """True for answers the symbolic parser must not see (size, nesting, power towers)."""
    if len(answer) > max_chars or _POWER_TOWER.search(answer.replace(" ", "")):
        return True
    depth = deepest = 0
    for ch in answer:
        depth += (ch == "{") - (ch == "}")
        deepest = max(deepest, depth)
    return deepest > max_depth


def unbox(answer: str) -> str:
    """`answer` with boxes nested inside it replaced by their content."""
    while True:
        match = _NESTED_BOX.search(answer)
        if match is None:
            return answer
        depth, end = 1, match.end()
        while end < len(answer) and depth:
            depth += (answer[end] == "{") - (answer[end] == "}")
            end += 1
        if depth:
            return answer
        answer = answer[: match.start()] + answer[match.end() : end - 1] + answer[end:]


def is_hedge(predicted: str, gold: str) -> bool:
    """True when `predicted` offers alternatives (`or`, `\\lor`, `\\pm`) that the gold does not."""
    offered = {m.lower() for m in _DISJUNCTION.findall(predicted)}
    return bool(offered - {m.lower() for m in _DISJUNCTION.findall(gold)})


def split_relations(text: str) -> list[str]:
    """The sides of `a = b = c` (`=` and `\\approx` outside braces and brackets)."""
    parts, depth, start = [], 0, 0
    for match in re.finditer(r"[{(\[]|[})\]]|" + _RELATION.pattern, text):
        token = match.group()
        if token in "{([":
            depth += 1
        elif token in "})]":
            depth -= 1
        elif depth == 0:
            parts.append(text[start : match.start()])
            start = match.end()
    return [*parts, text[start:]]


def answers_equal(predicted: str, gold: str, timeout_seconds: int = 5) -> bool:
    """True when `predicted` and `gold` denote the same answer (see the module docstring)."""
    # one line: math-verify misreads answers spread over lines (a multi-line matrix)
    predicted, gold = " ".join(unbox(predicted).split()), " ".join(str(gold).split())
    if is_hedge(predicted, gold):
        return False
    sides = split_relations(predicted)
    if len(sides) > 1 and len(split_relations(gold)) == 1:
        # `x = 5` and `2 + 3 = 5` answer 5; every side but a label must equal the gold
        values = [side for side in sides if not _LABEL.match(side.strip())]
        return bool(values) and all(_values_equal(side, gold, timeout_seconds) for side in values)
    return _values_equal(predicted, gold, timeout_seconds)


def _values_equal(predicted: str, gold: str, timeout_seconds: int) -> bool:
    if not predicted.strip():
        return False
    if normalise(predicted) == normalise(gold):
        return True
    p, g = as_number(predicted), as_number(gold)
    if p is not None and g is not None:
        if p == g:
            return True
        if p.denominator == 1 and g.denominator == 1:
            return False
    if too_complex(predicted):
        return False
    from math_verify import parse, verify

    # math-verify's timeout uses SIGALRM, which exists only in the main thread.
    limit = timeout_seconds if threading.current_thread() is threading.main_thread() else None
    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=limit)
        predicted_parsed = parse(f"${predicted}$", parsing_timeout=limit)
        return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=limit))
    except Exception:  # a parser failure or timeout means "not shown equal"
        return False


class MathVerifier:
    """1.0 when the last boxed answer equals the gold answer (any of them, for a list).

    Args:
        think_only_after: grade only the text after the first `</think>` (the reference).
        timeout_seconds: math-verify's limit per parse / comparison.
        max_answer_chars: longer boxed answers score 0 without parsing.

    Example:
        >>> MathVerifier()("so \\\\boxed{\\\\frac{1}{2}}", Sample("a", "?", "0.5"))
        1.0
    """

    # sympy can hang in C code where no signal reaches it: the scoring runner isolates it.
    isolated = True

    def __init__(self, think_only_after: bool = True, timeout_seconds: int = 5, max_answer_chars: int = 1000):
        check_positive("verifier.timeout_seconds", timeout_seconds)
        check_positive("verifier.max_answer_chars", max_answer_chars)
        self.think_only_after, self.timeout_seconds, self.max_answer_chars = think_only_after, int(timeout_seconds), max_answer_chars

    def extract(self, response: str, sample: Sample | None = None) -> str | None:
        """The graded answer (the last boxed expression), or None."""
        return last_boxed((after_think(response) if self.think_only_after else response)[-SCAN_CHARS:])

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
