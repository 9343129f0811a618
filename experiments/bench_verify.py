"""Scoring throughput: math responses per second (in-process, 1 and 2 workers), HumanEval's
164 canonical solutions (and their `pass` stubs) through the code verifier with 2 workers,
and the start cost of one sandboxed program.

    python experiments/bench_verify.py [--responses 512] [--workers 0 1 2] [--skip-math] [--skip-code]

The code part also runs against an older checkout (same public API) for a before/after figure:
    PYTHONPATH=/path/to/old/checkout python experiments/bench_verify.py --skip-math

The responses are built from MATH-500 rows, as a policy would write them: a reasoning text
of ~1,500 characters ending in a boxed answer that is the gold verbatim (40%), an equivalent
rewrite that needs the symbolic checker (20%), another row's gold (30%), or no box (10%).
Every runner is timed after its workers are up (a warm-up batch), on the same responses.
"""

from __future__ import annotations

import argparse
import random
import time

import archer
from archer.data import load_benchmark
from archer.verifiers import CodeVerifier, MathVerifier, ScoringRunner

REWRITES = [("\\frac", "\\dfrac"), (" ", ""), ("\\left(", "("), ("\\right)", ")")]


def build_responses(count: int, seed: int = 0):
    rng = random.Random(seed)
    rows = load_benchmark("math500")
    filler = "Let us compute step by step. " * 50
    texts, samples = [], []
    for _ in range(count):
        row = rng.choice(rows)
        kind = rng.random()
        if kind < 0.4:
            answer = row.answer
        elif kind < 0.6:
            answer = row.answer
            for old, new in REWRITES:
                answer = answer.replace(old, new)
            answer = f"{answer} " if answer == row.answer else answer
            answer = f"\\left({answer}\\right)" if answer.isdigit() else answer
        elif kind < 0.9:
            answer = rng.choice(rows).answer
        else:
            answer = None
        texts.append(filler + (f"Therefore the answer is $\\boxed{{{answer}}}$." if answer is not None else "I am not sure."))
        samples.append(row)
    return texts, samples


def bench_code(repeats: int) -> None:
    """HumanEval canonical solutions and stubs through ScoringRunner(workers=2), best of `repeats`."""
    samples = load_benchmark("humaneval")
    solved = [f"```python\n{s.info['function_prompt']}{s.info['canonical_solution']}\n```" for s in samples]
    stubs = [f"```python\n{s.info['function_prompt']}    pass\n```" for s in samples]
    print(f"code verifier from {archer.__file__}")
    with ScoringRunner(CodeVerifier(max_tests=0), workers=2, timeout=120) as runner:
        runner(solved[:4], samples[:4])  # start the workers
        for name, texts in (("canonical", solved), ("pass stubs", stubs)):
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                scores, metrics = runner(texts, samples)
                times.append(time.perf_counter() - started)
            print(f"HumanEval {name}: {int(scores.sum())}/{len(samples)} score 1, best {min(times):.2f} s "
                  f"of {repeats} (all: {', '.join(f'{t:.2f}' for t in times)}), errors {metrics['reward/errors']:.0f}",
                  flush=True)
    try:
        from archer.verifiers.sandbox import CallSession, Limits, run_program
    except ImportError:
        return  # an older checkout: no per-program figures
    for isolation in ("bubblewrap", "none_trusted_code_only"):
        started = time.perf_counter()
        for _ in range(20):
            run_program("print(input())", stdin="x\n", isolation=isolation)
        run = (time.perf_counter() - started) / 20
        started = time.perf_counter()
        for _ in range(20):
            with CallSession("def f(x):\n    return x", {"name": "f"}, Limits(), isolation=isolation) as session:
                session.call([1], {}, 5.0)
        call = (time.perf_counter() - started) / 20
        print(f"start cost, {isolation}: one stdin run {1000 * run:.1f} ms, one call session (start + 1 call) "
              f"{1000 * call:.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="HumanEval passes (the best is reported)")
    parser.add_argument("--skip-math", action="store_true")
    parser.add_argument("--skip-code", action="store_true")
    args = parser.parse_args()
    if not args.skip_code:
        bench_code(args.repeats)
    if args.skip_math:
        return
    texts, samples = build_responses(args.responses)
    reference = None
    print(f"{args.responses} math responses (MATH-500 golds), verifier: MathVerifier")
    for workers in args.workers:
        with ScoringRunner(MathVerifier(), workers=workers, timeout=30) as runner:
            runner(texts[:8], samples[:8])  # start the workers, import sympy / math-verify
            started = time.perf_counter()
            scores, metrics = runner(texts, samples)
            seconds = time.perf_counter() - started
        reference = scores if reference is None else reference
        same = "same scores" if scores.tolist() == reference.tolist() else "SCORES DIFFER"
        print(f"workers={workers}: {args.responses / seconds:8.1f} responses/s  ({seconds:.2f} s, "
              f"accuracy {scores.mean().item():.3f}, errors {metrics['reward/errors']:.0f}, "
              f"timeouts {metrics['reward/timeouts']:.0f}, {same})", flush=True)


if __name__ == "__main__":
    main()
