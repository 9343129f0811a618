"""Answer extraction shared by verifiers (PAPER.md section 3, "Rewards")."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```(?:python|py|Python3?|python3)?[ \t]*\n(.*?)```", re.DOTALL)


def after_think(response: str) -> str:
    """The text after the first `</think>`, or the whole response when there is none."""
    head, sep, tail = response.partition("</think>")
    return tail if sep else response


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` (nested braces), or of `\\boxed x`."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:]
    rest = rest[len("\\boxed"):] if rest.startswith("\\boxed") else rest[len("\\fbox"):]
    if rest.startswith(" ") and not rest.lstrip().startswith("{"):
        token = rest.strip().split()
        return token[0].rstrip("$.") if token else None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, ch in enumerate(rest):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            return rest[1:i]
    return None  # unbalanced: no answer


def last_code_block(text: str) -> str | None:
    """The last fenced python code block."""
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else None
