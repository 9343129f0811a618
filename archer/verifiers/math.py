"""Math answers: the last \\boxed{} after `</think>`, checked with math-verify.

An exact string / numeric fast path answers most cases without the symbolic parser; the
parser (math-verify's `parse` + `verify`, on both gold and prediction) handles fractions,
intervals, sets, units and equivalent forms. Oversized answers score 0 at once.
"""

from __future__ import annotations

from archer.types import Sample
from archer.verifiers.extract import after_think, last_boxed

MAX_ANSWER_CHARS = 1000


def _normalise(text: str) -> str:
    return text.replace(" ", "").replace("\\!", "").replace("dfrac", "frac").replace("tfrac", "frac").strip("$. ")


class MathVerifier:
    """1.0 when the last boxed answer equals the gold answer (any of them, for a list).

    Args:
        think_only_after: grade only the text after the first `</think>` (the reference).

    Example:
        >>> MathVerifier()("so \\\\boxed{\\\\frac{1}{2}}", Sample("a", "?", "0.5"))
        1.0
    """

    def __init__(self, think_only_after: bool = True):
        self.think_only_after = think_only_after

    def __call__(self, response: str, sample: Sample) -> float:
        text = after_think(response) if self.think_only_after else response
        predicted = last_boxed(text[-20_000:])
        if predicted is None or len(predicted) > MAX_ANSWER_CHARS:
            return 0.0
        golds = sample.answer if isinstance(sample.answer, list) else [sample.answer]
        return float(any(self._equal(predicted, str(gold)) for gold in golds))

    @staticmethod
    def _equal(predicted: str, gold: str) -> bool:
        if _normalise(predicted) == _normalise(gold):
            return True
        try:
            if float(_normalise(predicted).replace(",", "")) == float(_normalise(gold).replace(",", "")):
                return True
        except ValueError:
            pass
        from math_verify import parse, verify

        try:
            return bool(verify(parse(f"${gold}$"), parse(f"${predicted}$")))
        except Exception:
            return False
