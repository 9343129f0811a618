"""Format rewards: whether a response has the shape asked for, whatever its answer.

Meant as small weighted parts beside a correctness verifier (`verifier=weighted`): alone they
teach a policy the format and nothing else. Each scores 1.0 or 0.0.
"""

from __future__ import annotations

import re

from archer.types import Sample
from archer.verifiers.extract import last_boxed

_FINAL_LINE = re.compile(r"#\s*-?\d{1,40}\s*$")


class AnswerLineFormat:
    """1.0 when the response ends with a `#<integer>` line (the arithmetic task's answer form).

    Example:
        >>> AnswerLineFormat()("2+3=5\\n#7", Sample("a", "2+3", 5))
        1.0
    """

    isolated = False

    def __call__(self, response: str, sample: Sample) -> float:
        return float(_FINAL_LINE.search(response.strip()[-64:]) is not None)


class BoxedFormat:
    """1.0 when the response holds a non-empty `\\boxed{...}` after its reasoning (after the
    first `</think>` when there is one).

    Example:
        >>> BoxedFormat()("<think>2+2</think> so \\\\boxed{4}", Sample("a", "2+2", "4"))
        1.0
    """

    isolated = False

    def __call__(self, response: str, sample: Sample) -> float:
        _, closed, after = response.partition("</think>")
        boxed = last_boxed(after if closed else response)
        return float(bool(boxed and boxed.strip()))


class ThinkClosedFormat:
    """1.0 when the reasoning block is closed exactly once (`</think>` appears once, with no
    `<think>` after it) and something follows it.

    Example:
        >>> ThinkClosedFormat()("<think>hm</think>4", Sample("a", "2+2", "4"))
        1.0
    """

    isolated = False

    def __call__(self, response: str, sample: Sample) -> float:
        if response.count("</think>") != 1:
            return 0.0
        after = response.split("</think>", 1)[1]
        return float("<think>" not in after and bool(after.strip()))
