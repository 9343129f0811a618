"""String-level reading of math answers: spellings, plain numbers, hedges, relations, guards.

Pure functions on strings, used by `archer/verifiers/math.py` before anything reaches the
symbolic checker. Each one errs on the side of "not shown equal": under RL, a lenient reader
is a reward the policy will learn to game.
"""

from __future__ import annotations

import re
from fractions import Fraction

# spacing commands and whitespace; `\\` (a LaTeX row break) is matched first so it is kept whole
_SPACES = re.compile(r"(\\\\)|\\[,;:! ]|\\quad|\\qquad|\s+")
_TEXT_UNIT = re.compile(r"\\(?:text|mbox|mathrm|textbf)\{\s*([^{}]*)\}")
_TEXT_COMMAND = re.compile(r"\\(?:text|textrm|textit|textbf|textsf|texttt|mathrm|mathit|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\{?\\circ\}?|°|\\degree")
_POWER_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\d\s*\^|\^\s*\{?\s*\d{5,}|\d{4,}\s*!")
# a factorial of anything but a small number or a variable (`(9999 \cdot 999)!`), big binomials
_HEAVY = re.compile(r"[)}\]]\s*!|\d{4,}\s*!|\\binom\s*\{\s*\d{5,}|\\binom\s*\{[^{}]*[!^]")
_SCI = re.compile(r"^(-?\d+(?:\.\d+)?)(?:\\times|\\cdot|\*|x)10\^\{?(-?\d{1,3})\}?$")
_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d{1,3})?$")
_SLASH = re.compile(r"^(-?)(\d+(?:\.\d*)?)/(\d+(?:\.\d*)?)$")
# A comma followed by spacing separates list items; only `1,000` is a thousands separator.
_LIST_COMMA = re.compile(r",(?:\s|\\[,;:! ]|\\q?quad)")
# What offers alternatives: words (after text commands are flattened) and symbols.
_HEDGE_WORDS = re.compile(r"(?<![A-Za-z\\])(or|either|otherwise|if|else|maybe|possibly|perhaps|alternatively)"
                          r"(?![A-Za-z])", re.IGNORECASE)
_HEDGE_SYMBOLS = re.compile(r"\\(lor|vee|land|wedge|pm|mp|Rightarrow|implies|rightarrow|Longrightarrow|to|iff)"
                            r"(?![A-Za-z])|([∨∧±∓→⇒]|\\&)")
# two numbers with only spacing, `~`, `|` or commands between them (`42 \\bigvee 43`)
_NUMBERS_SIDE_BY_SIDE = re.compile(r"\d((?:\s|~|\||\\[A-Za-z]+)+)(?=\d)")
_ARITHMETIC = {"cdot", "times", "div", "ast", "bmod", "mod", "pmod", "frac", "dfrac", "tfrac", "sqrt"}
_NESTED_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ENVIRONMENT = re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.DOTALL)
_RELATION = re.compile(r"=|\\approx(?![A-Za-z])")
_LABEL = re.compile(r"^\\?[A-Za-z]+(?:_\{?\w+\}?)?(?:\([A-Za-z, ]*\))?$")
# letters that are not variables: commands of numbers and units
_NUMERIC_COMMANDS = re.compile(r"\\(?:d|t)?frac|\\sqrt|\\cdot|\\times|\\pi|\\infty|\\circ|\\left|\\right|\\%|\\,|"
                               r"\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|\\mbox\{[^{}]*\}|\\[;:! ]|\\degree|e[-+]?\d")


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
    """The exact value of a plain number (`025`, `1,000`, `-3.50`, `1.2e-8`, `4\\times10^{5}`,
    `\\frac{3}{4}`, `-1./3`), or None."""
    if _LIST_COMMA.search(answer):
        return None
    text = normalise(answer)
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    try:
        match = _SCI.match(text)
        if match:
            return Fraction(match.group(1)) * Fraction(10) ** int(match.group(2))
        frac = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}", text)
        if frac:
            return Fraction(int(frac.group(2)), int(frac.group(3))) * (-1 if frac.group(1) else 1)
        slash = _SLASH.match(text)
        if slash:
            return Fraction(slash.group(2)) / Fraction(slash.group(3)) * (-1 if slash.group(1) else 1)
        if _NUMBER.match(text.lower()):
            return Fraction(text.lower())
    except (ValueError, ZeroDivisionError):
        return None
    return None


def numbers_equal(p: Fraction, g: Fraction, relative: float = 1e-6) -> bool:
    """Exact for integers; otherwise within a relative `1e-6`, so a decimal that rounds the
    gold is right (`0.0833333333333333` for `1/12`) and a coarser one is not (`0.08`)."""
    if p == g:
        return True
    if p.denominator == 1 and g.denominator == 1:
        return False
    return abs(p - g) <= relative * abs(g)


def too_complex(answer: str, max_chars: int = 1000, max_depth: int = 32) -> bool:
    """True for answers the symbolic parser must not see (size, nesting, power towers, big factorials)."""
    squeezed = answer.replace(" ", "")
    if len(answer) > max_chars or _POWER_TOWER.search(squeezed) or _HEAVY.search(squeezed):
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


def hedge_markers(answer: str) -> set[str]:
    """The ways `answer` offers alternatives: words (`or`, `otherwise`, `if`, even split across
    text commands), symbols (`\\lor`, `\\pm`, `\\Rightarrow`, `∨`), text between two answers
    (`1/2 \\text{ (} 1/3 \\text{)}`), a row break outside an environment, or two numbers side
    by side (`42 ~ 43`, `42 | 43`)."""
    flat = answer
    for _ in range(8):  # `\\textrm{ o}\\textrm{r }` reads "or" once flattened
        flattened = _TEXT_COMMAND.sub(lambda m: m.group(1), flat)
        if flattened == flat:
            break
        flat = flattened
    joined = re.sub(r"\}\s*\{", "", flat)
    markers = {m.group(1).lower() for m in _HEDGE_WORDS.finditer(re.sub(r"[{}]", "", joined))}
    markers |= {m.group(0) for m in _HEDGE_SYMBOLS.finditer(answer)}
    pieces = [re.sub(r"^[\^_]\{?[\w+-]*\}?", "", piece.strip(" ,;:.()[]{}")) for piece in _TEXT_COMMAND.split(answer)[::2]]
    if sum(bool(piece.strip(" ,;:.()[]{}")) for piece in pieces) > 1:  # `1/2 \\text{ is wrong, } 1/3`
        markers.add("text between answers")
    outside = _ENVIRONMENT.sub(" ", answer)
    if "\\\\" in outside:
        markers.add("row break")
    spaced = _SPACES.sub(lambda m: m.group(1) or " ", outside.replace("\\,", ""))  # `32\,349`: one number
    for match in _NUMBERS_SIDE_BY_SIDE.finditer(spaced):
        commands = set(re.findall(r"\\([A-Za-z]+)", match.group(1)))
        if not commands or commands - _ARITHMETIC:
            markers.add("numbers side by side")
    return markers


def is_hedge(predicted: str, gold: str) -> bool:
    """True when `predicted` offers alternatives the gold does not."""
    return bool(hedge_markers(predicted) - hedge_markers(gold))


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


def is_label(side: str) -> bool:
    """True for the left side of `x = 5`, `f(x) = ...`, `a_1 = ...`: a name, not a value."""
    return bool(_LABEL.match(side.strip()))


def has_variables(answer: str) -> bool:
    """True when `answer` holds letters beyond numeric commands and units (`\\hbar \\omega`, `x`)."""
    return bool(re.search(r"[A-Za-z]", _NUMERIC_COMMANDS.sub("", answer)))
