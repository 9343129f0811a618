"""The testbed's preregistered hypotheses, judged from a summarized sweep (experiments/results/testbed).

    archer-summarize sweeps/testbed --out experiments/results/testbed --paired-against grpo archer
    python experiments/testbed_verdicts.py experiments/results/testbed/runs.csv

Each hypothesis compares two strategies seed by seed on one metric of runs.csv; the verdict is
read from the paired 95% Student-t interval (archer/sweep_stats.py, `verdict`): supported when
the whole interval lies on the predicted side, contradicted when it lies on the other side,
inconclusive otherwise. This file is part of PREREGISTRATION.md: it was committed before any
confirmatory run.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archer.sweep_stats import paired_by_seed, verdict  # noqa: E402

# id, statement, treatment, baseline, runs.csv column, predicted sign, margin (non-inferiority), scale
HYPOTHESES = [
    ("H1a", "Archer keeps more entropy on high-entropy tokens than GRPO", "archer", "grpo", "monitor_entropy_high_final", +1, 0.0, 1),
    ("H1b", "Archer has higher held-out pass@16 than GRPO", "archer", "grpo", "pass@k", +1, 0.0, 100),
    ("H1c", "Archer's held-out pass@1 is not lower than GRPO's by more than 3 points", "archer", "grpo", "pass@1", +1, 0.03, 100),
    ("H2a", "Archer keeps more entropy on high-entropy tokens than DAPO", "archer", "dapo", "monitor_entropy_high_final", +1, 0.0, 1),
    ("H2b", "Archer has higher held-out pass@16 than DAPO", "archer", "dapo", "pass@k", +1, 0.0, 100),
    ("H3", "80/20 masking has lower held-out pass@1 than Archer", "entropy_mask", "archer", "pass@1", -1, 0.0, 100),
    ("H4", "Lopti has lower held-out pass@1 than Archer", "lopti", "archer", "pass@1", -1, 0.0, 100),
    ("H5", "Swapping the constraints lowers held-out pass@1", "archer_swapped", "archer", "pass@1", -1, 0.0, 100),
    ("H6a", "Without the knowledge-token KL, knowledge tokens drift further from the reference",
     "archer_no_knowledge_kl", "archer", "ref_kl_low_final", +1, 0.0, 1),
    ("H6b", "Without the knowledge-token KL, high-entropy-token entropy is lower (collapse)",
     "archer_no_knowledge_kl", "archer", "monitor_entropy_high_final", -1, 0.0, 1),
]


def read_runs(path: Path) -> dict[str, dict[int, dict[str, float | None]]]:
    """strategy -> seed -> column -> value."""
    runs: dict[str, dict[int, dict]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            values = {k: (float(v) if v not in ("", "None") else None) for k, v in row.items()
                      if k not in ("strategy", "seed", "run")}
            runs.setdefault(row["strategy"], {})[int(row["seed"])] = values
    return runs


def judge(runs: dict) -> list[dict]:
    rows = []
    for hid, text, treatment, baseline, column, sign, margin, scale in HYPOTHESES:
        if treatment not in runs or baseline not in runs:
            rows.append({"id": hid, "text": text, "verdict": f"not run ({treatment} or {baseline} missing)"})
            continue
        paired = paired_by_seed({s: v.get(column) for s, v in runs[treatment].items()},
                                {s: v.get(column) for s, v in runs[baseline].items()})
        rows.append({"id": hid, "text": text, "column": column, "scale": scale, "verdict": verdict(paired, sign, margin), **paired})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| id | hypothesis | seeds | mean difference | 95% t interval | verdict |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        if "mean" not in r:
            lines.append(f"| {r['id']} | {r['text']} | 0 | - | - | {r['verdict']} |")
            continue
        scale, digits = r["scale"], 1 if r["scale"] == 100 else 4
        low, high = r["t95"]
        lines.append(f"| {r['id']} | {r['text']} | {r['n']} | {scale * r['mean']:+.{digits}f} | "
                     f"{scale * low:+.{digits}f} to {scale * high:+.{digits}f} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_csv", type=Path, help="runs.csv written by archer-summarize")
    args = parser.parse_args()
    print(markdown(judge(read_runs(args.runs_csv))), end="")


if __name__ == "__main__":
    main()
