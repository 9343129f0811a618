"""How much of a policy's pass@1 an answer prior explains, from archer-eval folders of one benchmark.

    python experiments/answer_prior.py evals/base evals/seed0 evals/seed1            # small = 1, 2, 3
    python experiments/answer_prior.py evals/base evals/seed0 --small 1 2 3 4 5

RL on a weak model can raise pass@1 by learning which answers are common rather than how to get
them. For each folder this prints, from its `samples.jsonl`:
- pass@1 (mean score) and the share of responses whose answer is one of the `--small` values;
- pass@1 on the problems whose gold answer is one of them, and on the rest;
- what problem-independent guessing would score: answers drawn from the folder's own answer
  distribution, whatever the problem (the expected score, exact);
- the score of always giving the benchmark's commonest gold answer.
A policy well above its own guessing baseline on the other problems is using the problem.
Gold answers come from the shipped benchmark named in the samples (`archer.data.load_benchmark`).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from archer.data import load_benchmark


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def read_samples(folder: Path) -> list[dict]:
    path = Path(folder) / "samples.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: no samples.jsonl; point at an archer-eval out_dir")
    rows = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise SystemExit(f"{path}:{line_no}: not valid JSON ({err.msg}); rerun archer-eval with that out_dir "
                                 "to finish it") from err
    return rows


def answer_prior(rows: list[dict], gold: dict[str, str], small: set[float]) -> dict[str, float]:
    """The figures above for one folder's samples; `gold` maps problem id -> gold answer."""
    gold_numbers = [_number(g) for g in gold.values()]

    def mean_score(subset: list[dict]) -> float:
        return sum(r["score"] for r in subset) / len(subset) if subset else float("nan")

    answers = Counter(_number(r.get("answer")) for r in rows)
    guessing = sum(count / len(rows) * sum(g == a for g in gold_numbers) / len(gold_numbers)
                   for a, count in answers.items() if a is not None)
    commonest, times = Counter(gold_numbers).most_common(1)[0]
    gold_small = [r for r in rows if _number(gold[r["problem_id"]]) in small]
    gold_other = [r for r in rows if _number(gold[r["problem_id"]]) not in small]
    return {
        "samples": len(rows),
        "pass@1": mean_score(rows),
        "answer_small_share": sum(_number(r.get("answer")) in small for r in rows) / len(rows),
        "no_answer_share": answers[None] / len(rows),
        "problems_gold_small": len({r["problem_id"] for r in gold_small}),
        "pass@1_gold_small": mean_score(gold_small),
        "problems_gold_other": len({r["problem_id"] for r in gold_other}),
        "pass@1_gold_other": mean_score(gold_other),
        "guessing_own_distribution": guessing,
        "commonest_gold": commonest,
        "commonest_gold_score": times / len(gold_numbers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="archer-eval out_dirs of the same benchmark")
    parser.add_argument("--small", nargs="+", type=float, default=[1.0, 2.0, 3.0], help="the answers counted as the prior")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    small = set(args.small)
    results = {}
    for folder in args.folders:
        rows = read_samples(folder)
        benchmarks = {r["benchmark"] for r in rows}
        if len(benchmarks) != 1:
            raise SystemExit(f"{folder}: samples of {sorted(benchmarks)}; give folders of one benchmark")
        gold = {s.id: s.answer for s in load_benchmark(benchmarks.pop())}
        results[str(folder)] = answer_prior(rows, gold, small)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    label = ", ".join(f"{v:g}" for v in sorted(small))
    print(f"| folder | pass@1 | answers in {{{label}}} | gold in {{{label}}} | other gold | guessing | no answer |")
    print("|---|---|---|---|---|---|---|")
    for folder, r in results.items():
        print(f"| {folder} | {r['pass@1']:.1%} | {r['answer_small_share']:.1%} | {r['pass@1_gold_small']:.1%} "
              f"({r['problems_gold_small']}) | {r['pass@1_gold_other']:.1%} ({r['problems_gold_other']}) "
              f"| {r['guessing_own_distribution']:.1%} | {r['no_answer_share']:.1%} |")
    r = next(iter(results.values()))
    print(f"\nAlways answering {r['commonest_gold']:g} (the commonest gold answer) scores {r['commonest_gold_score']:.1%}.")


if __name__ == "__main__":
    main()
