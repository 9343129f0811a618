"""Knights and Knaves: every person's role must be stated, and right.

The graded text is the last `<answer>...</answer>` block after `</think>` (Logic-RL's format),
else everything after `</think>`. Within it, statements like "(1) Zoey is a knave",
"Oliver is a knight", "Zoey: knave" or "Zoey - a knight" assign roles.

Hedges score 0:
- an answer block must hold exactly one role word per person (Logic-RL's rule), so naming both
  roles for someone, or extra role statements, fails; so do words that offer alternatives in
  it ("or the other way round", "maybe", "otherwise"), and role statements after it;
- anywhere, a role followed by an alternative ("a knight or a knave", "knight/knave",
  "a knight (maybe a knave)") fails.
Without an answer block (free text), when one person is named several times the last statement
counts (reasoning may try a role before settling), unless its sentence hedges ("Or maybe Zoey
is a knave").
"""

from __future__ import annotations

import re

from archer.types import Sample
from archer.verifiers.extract import after_think

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_GOLD_LINE = re.compile(r"\(\d+\)\s*(.+?)\s+is\s+an?\s+(knight|knave)", re.IGNORECASE)
_ROLE_WORD = re.compile(r"\b(?:knight|knave)s?\b", re.IGNORECASE)
_HEDGE_WORD = re.compile(r"\b(?:or|either|maybe|possibly|perhaps|otherwise|alternatively|possibilit(?:y|ies)|"
                         r"other way|vice versa|unless|if)\b", re.IGNORECASE)
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


def _roles_of(name: str, text: str) -> list[str]:
    """Every role `text` states for `name`, in order."""
    pattern = re.compile(
        rf"\b{re.escape(name)}\b\s*(?:is\s+(?:an?\s+)?|:\s*|-\s*(?:an?\s+)?|=\s*)(knight|knave)s?\b", re.IGNORECASE
    )
    return [role.lower() for role in pattern.findall(text)]


def stated_roles(text: str, names: list[str]) -> dict[str, str]:
    """The last role stated for each of `names` in `text` (names never stated are absent)."""
    found = {}
    for name in names:
        roles = _roles_of(name, text)
        if roles:
            found[name] = roles[-1]
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
        """(graded text, whether it is an answer block); None when nothing can be graded, or when
        roles are stated again after the last answer block (an alternative offered outside it)."""
        text = (after_think(response) if self.think_only_after else response)[-20_000:]
        blocks = list(_ANSWER.finditer(text))
        if blocks:
            after = text[blocks[-1].end():]
            return (None if _ROLE_WORD.search(after) else blocks[-1].group(1)), True
        return (None if self.require_answer_tags else text), False

    def extract(self, response: str, sample: Sample) -> str | None:
        """The stated roles as "Name=role; ..." in the gold's order, or None if none is stated (or a hedge)."""
        text, block = self._graded_text(response)
        names = list(gold_roles(sample.answer))
        if text is None or is_hedge(text, len(names), block, names):
            return None
        roles = stated_roles(text, names)
        return "; ".join(f"{name}={role}" for name, role in roles.items()) or None

    def vote_key(self, answer: str) -> str:
        return answer

    def __call__(self, response: str, sample: Sample) -> float:
        text, block = self._graded_text(response)
        gold = gold_roles(sample.answer)
        if text is None or is_hedge(text, len(gold), block, list(gold)):
            return 0.0
        return float(stated_roles(text, list(gold)) == gold)


def is_hedge(text: str, people: int, answer_block: bool, names: list[str] = ()) -> bool:
    """True when `text` offers alternatives: a role followed by the other one; in an answer
    block, a number of role words other than one per person or a hedging word; in free text, a
    hedging word in the sentence of a person's last statement."""
    if _ALTERNATIVE.search(text):
        return True
    if answer_block:
        return len(_ROLE_WORD.findall(text)) != people or bool(_HEDGE_WORD.search(text))
    for name in names:
        mentions = [m.start() for m in re.finditer(rf"\b{re.escape(name)}\b", text)]
        if mentions:
            start = max(text.rfind(mark, 0, mentions[-1]) for mark in (".", "\n", ";", "!", "?")) + 1
            ends = [i for i in (text.find(mark, mentions[-1]) for mark in (".", "\n", ";", "!", "?")) if i >= 0]
            sentence = text[start : min(ends, default=len(text))]
            if _HEDGE_WORD.search(sentence) or len(set(_roles_of(name, sentence))) > 1:
                return True
    return False
