"""archer-compare: the per-problem difference between two archer-eval folders of the same benchmark.

    archer-compare evals/base evals/trained            # avg@k per problem, paired by problem id
    archer-compare evals/base evals/trained --json

For each benchmark both folders hold, every problem's avg@k (mean score of its k samples) is
paired by problem id; printed are the two means, their difference and a 95% percentile
bootstrap interval of the mean difference (problems resampled, the pairing kept). Pairing
removes the between-problem spread that two separate intervals would carry.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path


def per_problem_scores(folder: Path) -> dict[str, dict[str, float]]:
    """benchmark -> problem id -> mean score of that problem's samples in `folder/samples.jsonl`."""
    path = Path(folder) / "samples.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: no samples.jsonl; point at an archer-eval out_dir")
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    lines = path.read_text().splitlines()
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if line_no == len(lines):
                continue  # a last line cut by an interrupted write (archer-eval drops it on resume too)
            raise SystemExit(f"{path}:{line_no}: not valid JSON ({err.msg}); rerun archer-eval with that out_dir") from err
        scores[row["benchmark"]][row["problem_id"]].append(float(row["score"]))
    return {b: {pid: sum(v) / len(v) for pid, v in problems.items()} for b, problems in scores.items()}


def paired_difference(before: list[float], after: list[float], samples: int = 10_000, seed: int = 0,
                      confidence: float = 0.95) -> dict:
    """Mean of `after - before` over paired items with a percentile bootstrap interval."""
    if len(before) != len(after) or not before:
        raise ValueError("paired_difference needs two equally long, non-empty lists")
    diffs = [a - b for a, b in zip(after, before)]
    n, rng = len(diffs), random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    low = means[int((1 - confidence) / 2 * (samples - 1))]
    high = means[int((1 + confidence) / 2 * (samples - 1))]
    return {"n": n, "before": sum(before) / n, "after": sum(after) / n, "difference": sum(diffs) / n,
            "ci95": [low, high]}


def compare(before_dir: Path, after_dir: Path, samples: int = 10_000, seed: int = 0) -> dict[str, dict]:
    """benchmark -> paired_difference over the problems both folders scored."""
    before, after = per_problem_scores(before_dir), per_problem_scores(after_dir)
    results = {}
    for benchmark in sorted(set(before) & set(after)):
        ids = sorted(set(before[benchmark]) & set(after[benchmark]))
        if ids:
            results[benchmark] = paired_difference([before[benchmark][i] for i in ids],
                                                   [after[benchmark][i] for i in ids], samples, seed)
    if not results:
        raise SystemExit(f"{before_dir} and {after_dir} share no benchmark problems")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="archer-compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--bootstrap", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = compare(args.before, args.after, args.bootstrap)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| benchmark | problems | before avg@k | after avg@k | difference | 95% CI (paired) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        low, high = r["ci95"]
        print(f"| {name} | {r['n']} | {100 * r['before']:.1f} | {100 * r['after']:.1f} | "
              f"{100 * r['difference']:+.1f} | {100 * low:+.1f} to {100 * high:+.1f} |")


if __name__ == "__main__":
    main()
