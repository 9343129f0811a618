"""Answer extraction shared by verifiers (docs/paper.md, "How the reference code behaves")."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```(?:python|py|Python3?|python3)?[ \t]*\n(.*?)```", re.DOTALL)


def after_think(response: str) -> str:
    """The text after the first `</think>`, or the whole response when there is none."""
    head, sep, tail = response.partition("</think>")
    return tail if sep else response


def last_boxed(text: str) -> str | None:
    """Content of the last outermost `\\boxed{...}` / `\\fbox{...}` (nested braces, any lines),
    or of `\\boxed x`. A box inside another box is part of the outer one's content, never the
    answer on its own (`\\boxed{\\boxed{5} \\text{ or } 6}` answers `\\boxed{5} \\text{ or } 6`).
    None when there is no box, or the last one is never closed (a truncated response)."""
    found, position = None, 0
    while True:
        start = _BOX.search(text, position)
        if start is None:
            return found
        content, position = _box_argument(text, start.end())
        if content is None:
            return None if position < 0 else found
        found = content


_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _box_argument(text: str, i: int) -> tuple[str | None, int]:
    """(argument, index after it) of the box command ending at `i`; (None, -1) when unbalanced,
    (None, i) when the command has no argument."""
    j = i
    while j < len(text) and text[j] in " \t\n":
        j += 1
    if j >= len(text):
        return None, i
    if text[j] != "{":
        if j == i:  # `\\boxed5` is not a box
            return None, i
        token = text[j:].split(maxsplit=1)[0].rstrip("$.")
        return (token or None), j + len(token)
    depth = 0
    for k in range(j, len(text)):
        depth += text[k] == "{"
        depth -= text[k] == "}"
        if depth == 0:
            return text[j + 1 : k], k + 1
    return None, -1


def last_code_block(text: str) -> str | None:
    """The last fenced python code block."""
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else None


# What a small model writes before its final answer when it does not box it. The reader takes
# the last such phrase only, so an answer stated early and then revised reads as the revision.
_ANSWER_PHRASE = re.compile(r"(?:final answer|the answer is|answer\s*:|####)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
# the sentence after the phrase ends at a line break or a full stop not inside a number
_SENTENCE_END = re.compile(r"\n|\.(?!\d)")


def final_stated_number(text: str) -> str | None:
    """The number stated after the last answer phrase ("the answer is", "answer:", "final
    answer", "####"), when the rest of that sentence holds exactly one number; else None.

    Stricter than "the last number in the response": two numbers after the phrase ("5 or 6",
    "between 5 and 6") are a hedge and read as no answer, and a number with no answer phrase
    before it is not an answer. Thousands commas are dropped.

    Example:
        >>> final_stated_number("3 + 4 = 7 apples. The answer is 7.")
        '7'
        >>> final_stated_number("The answer is 7 or 8.") is None
        True
    """
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if not phrases:
        return None
    rest = text[phrases[-1].end():]
    end = _SENTENCE_END.search(rest)
    sentence = rest[: end.start()] if end else rest
    numbers = _NUMBER.findall(sentence)
    if len(numbers) != 1:
        return None
    return numbers[0].replace(",", "")
