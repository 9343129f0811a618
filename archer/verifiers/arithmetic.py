"""Exact verifier of the synthetic addition task (archer/data/synthetic.py)."""

from __future__ import annotations

import re

from archer.types import Sample

_FINAL = re.compile(r"#\s*(-?\d{1,40})\s*$")


class ArithmeticVerifier:
    """1.0 when the response's last line is `#<the exact sum>`, else 0.0.

    Only the final `#` line counts, so a response must finish its chain of steps and stop;
    anything after the answer (rambling, a second answer) scores 0.

    Example:
        >>> ArithmeticVerifier()("2+3=5\\n#5", Sample("a", "2+3", 5))
        1.0
    """

    isolated = False  # one regular expression on the last 64 characters: score in-process

    def extract(self, response: str, sample: Sample | None = None) -> str | None:
        """The final `#` answer as a string, or None."""
        match = _FINAL.search(response.strip()[-64:])
        return match.group(1) if match else None

    def vote_key(self, answer: str) -> str:
        return str(int(answer))

    def __call__(self, response: str, sample: Sample) -> float:
        match = _FINAL.search(response.strip()[-64:])
        return float(match is not None and int(match.group(1)) == int(sample.answer))
