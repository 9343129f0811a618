"""MathVerifier on answer styles drawn from the shipped benchmarks (MATH-500, AIME, AMC,
Minerva, OlympiadBench): each row is (gold, predicted, equal?)."""

from __future__ import annotations

import time

import pytest

from archer.types import Sample
from archer.verifiers.math import MathVerifier, answers_equal, as_number, normalise, too_complex

PAIRS = [
    # integers (AIME/AMC), leading zeros, separators, trailing .0
    ("204", "204", True),
    ("25", "025", True),
    ("142", "142.0", True),
    ("27648", "27,648", True),
    ("1000000", "1,000,000", True),
    ("-2019", "-2019", True),
    ("204", "205", False),
    ("25", "-25", False),
    ("7", "77", False),
    # fractions, \dfrac, decimals
    ("\\frac{11}{2}", "\\dfrac{11}{2}", True),
    ("\\frac{11}{2}", "5.5", True),
    ("\\frac{1}{4}", "0.25", True),
    ("\\frac{1}{4}", "\\tfrac14", True),
    ("\\frac{2}{3}", "0.67", False),
    ("\\frac{1}{4}", "\\frac{1}{5}", False),
    ("-\\frac{1}{2}", "-0.5", True),
    ("\\frac{3}{2}", "1\\frac{1}{2}", True),  # a mixed number
    # percentages, degrees, units
    ("50\\%", "50", True),
    ("76^\\circ", "76", True),
    ("76^\\circ", "76^{\\circ}", True),
    ("90^\\circ", "45^\\circ", False),
    ("10\\text{ inches}", "10", True),
    ("\\text{(C)}", "\\text{(C)}", True),
    ("\\text{(C)}", "\\text{(D)}", False),
    # scientific notation (Minerva)
    ("1.24e-8", "1.24 \\times 10^{-8}", True),
    ("4.46e19", "4.46\\times10^{19}", True),
    ("9.35e5", "935000", True),
    ("9.35e5", "9.36e5", False),
    ("6630", "6630", True),
    ("0.554", "0.555", False),
    # radicals, pi, complex numbers
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("\\sqrt{2}", "\\sqrt{3}", False),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", True),
    ("3\\pi", "3 \\pi", True),
    ("\\frac{\\pi}{2}", "\\pi/2", True),
    ("6+9i", "9i+6", True),
    ("6+9i", "6-9i", False),
    # tuples, points, intervals, sets
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})", True),
    ("(3, \\frac{\\pi}{2})", "(3, \\pi)", False),
    ("(1,2)", "(2,1)", False),
    ("[-2, 5)", "[-2,5)", True),
    ("[-2, 5)", "(-2, 5)", False),
    ("(-\\infty, 3]", "(-\\infty,3]", True),
    ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}", True),
    ("1, 2, 3", "3, 2, 1", True),
    ("1, 2, 3", "1, 2", False),
    # algebraic expressions (OlympiadBench, Minerva)
    ("n^{2}+1", "1+n^2", True),
    ("n^{2}+1", "n^2-1", False),
    ("p(x)=\\frac{(x-1)(x-2)}{6}", "\\frac{(x-1)(x-2)}{6}", True),
    ("\\frac{1}{s+a}", "\\frac{1}{a+s}", True),
    ("\\frac{1}{s+a}", "\\frac{1}{s-a}", False),
    ("x^2+2x+1", "(x+1)^2", True),
    ("2^{100}", "2^{100}", True),
    ("2^{100}", "2^{99}", False),
    # equations and labels
    ("5", "x=5", True),
    ("y=2x+3", "y=2x+3", True),
    ("y=2x+3", "y=3x+2", False),
    # matrices
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}", True),
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", False),
    # more styles seen in the sets
    ("\\frac{9}{4}", "2.25", True),
    ("\\sqrt{5}", "5^{1/2}", True),
    ("\\infty", "\\infty", True),
    ("3", "\\text{3}", True),
    ("0", "-0", True),
    ("1.6", "1.60", True),
    ("1.6", "1.7", False),
    ("\\frac{2}{3} \\frac{C}{S}", "\\frac{2C}{3S}", True),
    ("-1", "1", False),
    ("\\pi", "3.14", False),
    # junk
    ("12", "", False),
    ("12", "twelve-ish", False),
]


@pytest.mark.parametrize(("gold", "predicted", "equal"), PAIRS)
def test_answer_pairs(gold, predicted, equal):
    verifier = MathVerifier()
    assert verifier(f"Reasoning... so the answer is \\boxed{{{predicted}}}.", Sample("p", "?", gold)) == float(equal)


def test_table_is_large_enough():
    assert len(PAIRS) >= 60 and sum(e for *_, e in PAIRS) >= 25 and sum(not e for *_, e in PAIRS) >= 25


def test_multiple_golds_and_think_section():
    verifier = MathVerifier()
    assert verifier("\\boxed{3}", Sample("p", "?", ["2", "3"])) == 1.0
    # only the text after </think> is graded: a boxed answer inside the thinking does not count
    assert verifier("<think>\\boxed{3}</think> I give up", Sample("p", "?", "3")) == 0.0
    assert verifier("<think>\\boxed{2}</think> \\boxed{3}", Sample("p", "?", "3")) == 1.0
    assert MathVerifier(think_only_after=False)("<think>\\boxed{3}</think> no", Sample("p", "?", "3")) == 1.0
    assert verifier("no boxed answer at all: 3", Sample("p", "?", "3")) == 0.0


def test_number_parsing():
    assert as_number("025") == 25
    assert as_number("1,000") == 1000
    assert as_number("\\frac{3}{4}") == as_number("0.75")
    assert as_number("1.5\\times10^{3}") == 1500
    assert as_number("x+1") is None
    assert normalise("$\\dfrac{1}{2}.$") == "\\frac{1}{2}"


@pytest.mark.parametrize("answer", [
    "10^{10^{10^{10}}}",
    "2^{2^{2^{2^{2^{2}}}}}",
    "{" * 3000 + "1" + "}" * 3000,
    "9^9^9^9",
    "100000!",
    "x" * 1_000_000,
    "10^{999999999}",
])
def test_hostile_answers_score_zero_fast(answer):
    assert too_complex(answer) or len(answer) > 1000
    started = time.perf_counter()
    assert MathVerifier()(f"\\boxed{{{answer}}}", Sample("p", "?", "12")) == 0.0
    assert answers_equal(answer, "12") is False
    assert time.perf_counter() - started < 2.0


def test_megabyte_response_without_answer():
    started = time.perf_counter()
    assert MathVerifier()("\\boxed{" * 200_000 + "1", Sample("p", "?", "1")) == 0.0
    assert time.perf_counter() - started < 2.0


# No false accepts (gold, boxed response, expected score): separators, precision, nesting, hedges.
FALSE_ACCEPT_PROBES = [
    # a comma followed by a space separates list items: never a thousands separator
    ("32349", "\\boxed{32, 349}", 0.0),
    ("5120", "\\boxed{5, 120}", 0.0),
    ("1000", "\\boxed{1, 000}", 0.0),
    ("32349", "\\boxed{32,349}", 1.0),
    ("32349", "\\boxed{32\\,349}", 1.0),
    # an inexact decimal is left to math-verify's precision, not rejected on exact fractions
    ("\\frac{1}{12}", "\\boxed{0.0833333333333333}", 1.0),
    ("\\frac{1}{12}", "\\boxed{0.08}", 0.0),
    ("\\frac{1}{3}", "\\boxed{0.33}", 0.0),
    ("7", "\\boxed{8}", 0.0),
    # the outermost last box is the answer; a box nested inside it is part of it
    ("5", "\\boxed{\\boxed{5} \\text{ or } 6}", 0.0),
    ("5", "\\boxed{\\boxed{5}}", 1.0),
    ("6", "first \\boxed{5}, finally \\boxed{6}", 1.0),
    # a box spanning lines, and spacing before the brace
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\boxed{\n\\begin{pmatrix}\n1 \\\\\n2\n\\end{pmatrix}\n}", 1.0),
    ("3", "\\boxed {3}", 1.0),
    ("3", "\\boxed{3", 0.0),
    # hedges never score
    ("5", "\\boxed{5 \\text{ or } 6}", 0.0),
    ("6", "\\boxed{5 \\text{ or } 6}", 0.0),
    ("5", "\\boxed{5 \\lor 6}", 0.0),
    ("6", "\\boxed{5 \\vee 6}", 0.0),
    ("6", "\\boxed{5 \\pm 1}", 0.0),
    ("5", "\\boxed{x = 5 = 6}", 0.0),
    ("6", "\\boxed{x = 5 = 6}", 0.0),
    ("5", "\\boxed{x = 5 \\text{ or } x = 6}", 0.0),
    ("5", "\\boxed{5 \\text{ (or 6)}}", 0.0),
    ("5", "\\boxed{\\text{either 5 or 6}}", 0.0),
    ("5", "\\boxed{5 \\approx 5.0001}", 0.0),
    ("5 \\text{ or } 6", "\\boxed{5 \\text{ or } 6}", 1.0),  # unless the gold itself offers both
    # hedges found by a red-team pass: words split across text commands, conditionals, arrows,
    # logical symbols, row breaks, two numbers side by side, text between two answers
    ("42", "\\boxed{42 \\text{ if } n \\text{ even, } 43 \\text{ else}}", 0.0),
    ("\\frac12", "\\boxed{\\frac12 \\textrm{ o}\\textrm{r } \\frac13}", 0.0),
    ("\\frac12", "\\boxed{\\frac12 \\text{ otherwise } \\frac13}", 0.0),
    ("42", "\\boxed{42\\\\43}", 0.0),
    ("43", "\\boxed{43 ∨ 42}", 0.0),
    ("42", "\\boxed{43 \\Rightarrow 42}", 0.0),
    ("42", "\\boxed{42 \\land 43}", 0.0),
    ("42", "\\boxed{42 | 43}", 0.0),
    ("43", "\\boxed{42 \\to 43}", 0.0),
    ("43", "\\boxed{42 ~ 43}", 0.0),
    ("42", "\\boxed{42\\,\\&\\,43}", 0.0),
    ("43", "\\boxed{42 \\bigvee 43}", 0.0),
    ("\\frac12", "\\boxed{\\frac{1}{2} \\text{ (}\\frac{1}{3}\\text{)}}", 0.0),
    ("15", "\\boxed{15\\text{ cm}^2}", 1.0),  # a unit is not a second answer
    ("1.2e5", "\\boxed{1.2 \\times 10^{5}}", 1.0),
    # golds the symbolic parser misreads accept nothing they do not say (Minerva `-1./3`, and a
    # gold with variables it reads as the number 2)
    ("-1./3", "\\boxed{-1}", 0.0),
    ("-1./3", "\\boxed{-\\frac{1}{3}}", 1.0),
    ("-3./2", "\\boxed{-3/2}", 1.0),
    ("\\hbar \\omega(v+1 / 2)-\\frac{E_{0}^{2} e^{2}}{2 m \\omega^{2}}", "\\boxed{2}", 0.0),
    ("221,$8", "\\boxed{221}", 0.0),
    ("221,$8", "\\boxed{221, 8}", 1.0),
    # a gold naming its answer: the same name, then values that all agree
    ("x=6", "\\boxed{x=6=5}", 0.0),
    ("y = 2x+3", "\\boxed{y = 3x + 2 = 2x+3}", 0.0),
    ("f(n)=n", "\\boxed{f(n)=n}", 1.0),
    ("MR=SRMC", "\\boxed{MR=SRMC}", 1.0),
    ("5", "\\boxed{x = 5}", 1.0),
    ("5", "\\boxed{2 + 3 = 5}", 1.0),
    ("y=2x+3", "\\boxed{y = 2x + 3}", 1.0),
]


@pytest.mark.parametrize(("gold", "response", "score"), FALSE_ACCEPT_PROBES)
def test_no_false_accepts(gold, response, score):
    assert MathVerifier()(f"Some reasoning. {response}", Sample("p", "?", gold)) == score


def test_long_chains_and_heavy_factorials_are_refused_fast():
    chain = " = ".join(f"0 \\cdot ({999 * k})! + 42" for k in range(499, 469, -1))
    for answer in (chain, "(9999 \\cdot 999)!", "\\binom{100000}{50000}"):
        started = time.perf_counter()
        assert MathVerifier()(f"\\boxed{{{answer}}}", Sample("p", "?", "42")) == 0.0
        assert time.perf_counter() - started < 2.0, answer


@pytest.mark.parametrize("response, score", [
    ("3 + 4 = 7. The answer is 7.", 1.0),
    ("Answer: 1,007", 0.0),                       # the number read is 1007, not 7
    ("#### 7", 1.0),
    ("I think 6. Wait. Final answer: 7", 1.0),    # the last phrase counts
    ("The answer is 7. Hmm, actually the answer is 8.", 0.0),
    ("The answer is 7 or 8.", 0.0),               # a hedge: two numbers
    ("The answer is between 6 and 8.", 0.0),
    ("7", 0.0),                                   # a bare number is not a stated answer
    ("so 7 apples", 0.0),
    ("The answer is seven.", 0.0),
    ("The answer is \\boxed{8}, I mean 7. The answer is 7.", 0.0),  # a box wins over a phrase
    ("The answer is 7.5 kg.", 0.0),
    ("the answer is -7", 0.0),
])
def test_stated_number_reader_is_strict_about_hedges(response, score):
    verifier = MathVerifier(answer_reader="boxed_or_stated_number")
    assert verifier(response, Sample("a", "?", "7")) == score
    assert MathVerifier()(response, Sample("a", "?", "7")) == (1.0 if "\\boxed{7}" in response else 0.0)


def test_unknown_answer_reader_is_a_config_error():
    from archer.config_checks import ConfigError

    with pytest.raises(ConfigError, match="verifier.answer_reader"):
        MathVerifier(answer_reader="last_number")
