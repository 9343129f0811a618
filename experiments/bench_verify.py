"""Scoring throughput: math responses scored per second in-process and with 1 and 2 workers.

    python experiments/bench_verify.py [--responses 512] [--workers 0 1 2]

The responses are built from MATH-500 rows, as a policy would write them: a reasoning text
of ~1,500 characters ending in a boxed answer that is the gold verbatim (40%), an equivalent
rewrite that needs the symbolic checker (20%), another row's gold (30%), or no box (10%).
Every runner is timed after its workers are up (a warm-up batch), on the same responses.
"""

from __future__ import annotations

import argparse
import random
import time

from archer.data import load_benchmark
from archer.verifiers import MathVerifier, ScoringRunner

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
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
