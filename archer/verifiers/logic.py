"""Knights and Knaves: every person's role must be stated, and right.

The graded text is the last `<answer>...</answer>` block after `</think>` (Logic-RL's format),
else everything after `</think>`. Within it, statements like "(1) Zoey is a knave",
"Oliver is a knight", "Zoey: knave" or "Zoey - a knight" assign roles.

Hedges score 0:
- an answer block must hold exactly one role word per person (Logic-RL's rule), so naming both
  roles for someone, or extra role statements, fails;
- anywhere, a role followed by an alternative ("a knight or a knave", "knight/knave",
  "a knight (maybe a knave)") fails.
Without an answer block (free text), when one person is named several times the last statement
counts: reasoning may try a role before settling.
"""

from __future__ import annotations

import re

from archer.types import Sample
from archer.verifiers.extract import after_think

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_GOLD_LINE = re.compile(r"\(\d+\)\s*(.+?)\s+is\s+an?\s+(knight|knave)", re.IGNORECASE)
_ROLE_WORD = re.compile(r"\b(?:knight|knave)s?\b", re.IGNORECASE)
_ALTERNATIVE = re.compile(r"\b(?:knight|knave)s?\b\W{0,3}(?:or|maybe|possibly|perhaps|and/or)?\W{0,3}(?:an?\s+)?"
                          r"(?<=[\s/(])(?:knight|knave)s?\b", re.IGNORECASE)


def gold_roles(answer) -> dict[str, str]:
    """name -> "knight"/"knave" from a mapping or from Logic-RL's "(1) Zoey is a knave" text."""
    if isinstance(answer, dict):
        return {str(name): str(role).lower() for name, role in answer.items()}
    roles = {name: role.lower() for name, role in _GOLD_LINE.findall(str(answer))}
    if not roles:
        raise ValueError(f"cannot read roles from the gold answer {str(answer)[:80]!r}")
    return roles


def stated_roles(text: str, names: list[str]) -> dict[str, str]:
    """The last role stated for each of `names` in `text` (names never stated are absent)."""
    found = {}
    for name in names:
        pattern = re.compile(
            rf"\b{re.escape(name)}\b\s*(?:is\s+(?:an?\s+)?|:\s*|-\s*(?:an?\s+)?|=\s*)(knight|knave)s?\b", re.IGNORECASE
        )
        matches = pattern.findall(text)
        if matches:
            found[name] = matches[-1].lower()
    return found


class LogicVerifier:
    """1.0 when the response names every person's role correctly, else 0.0.

    Args:
        think_only_after: grade only the text after the first `</think>`.
        require_answer_tags: grade only inside `<answer>...</answer>` (0 without one).
    """

    isolated = False  # regular expressions on a bounded text: no need for a worker process

    def __init__(self, think_only_after: bool = True, require_answer_tags: bool = False):
        self.think_only_after, self.require_answer_tags = think_only_after, require_answer_tags

    def _graded_text(self, response: str) -> tuple[str | None, bool]:
        """(graded text, whether it is an answer block)."""
        text = after_think(response) if self.think_only_after else response
        blocks = _ANSWER.findall(text[-20_000:])
        if blocks:
            return blocks[-1], True
        return (None if self.require_answer_tags else text[-20_000:]), False

    def extract(self, response: str, sample: Sample) -> str | None:
        """The stated roles as "Name=role; ..." in the gold's order, or None if none is stated (or a hedge)."""
        text, block = self._graded_text(response)
        names = list(gold_roles(sample.answer))
        if text is None or is_hedge(text, len(names), block):
            return None
        roles = stated_roles(text, names)
        return "; ".join(f"{name}={role}" for name, role in roles.items()) or None

    def vote_key(self, answer: str) -> str:
        return answer

    def __call__(self, response: str, sample: Sample) -> float:
        text, block = self._graded_text(response)
        gold = gold_roles(sample.answer)
        if text is None or is_hedge(text, len(gold), block):
            return 0.0
        return float(stated_roles(text, list(gold)) == gold)


def is_hedge(text: str, people: int, answer_block: bool) -> bool:
    """True when `text` offers alternatives: a role followed by the other one, or (in an answer
    block) a number of role words other than one per person."""
    if _ALTERNATIVE.search(text):
        return True
    return answer_block and len(_ROLE_WORD.findall(text)) != people
