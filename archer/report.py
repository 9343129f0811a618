"""The paper-style results table: avg@K / pass@K per benchmark plus their average.

`results_table(results)` renders `results.json`'s benchmarks as Markdown; `rebuild_results`
recomputes results from a `samples.jsonl` alone (for inspection or after editing scores).
"""

from __future__ import annotations

import json
from pathlib import Path

from archer.evaluation import Record, summarize


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def average_row(benchmarks: dict[str, dict]) -> dict[str, float]:
    """Unweighted mean over benchmarks of avg@K and pass@K (each at its own K), as the paper."""
    avg = [next(v for key, v in row.items() if key.startswith("avg@") and not key.endswith("ci95")) for row in benchmarks.values()]
    passed = [next(v for key, v in row.items() if key.startswith("pass@")) for row in benchmarks.values()]
    return {"avg": sum(avg) / len(avg), "pass": sum(passed) / len(passed)}


def results_table(results: dict) -> str:
    """Markdown: one row per benchmark (K, avg@K with its 95% interval, pass@K, maj@K,
    mean response tokens, truncated share), then the average."""
    benchmarks = results["benchmarks"]
    lines = [
        "| benchmark | problems | K | avg@K | 95% CI | pass@K | maj@K | tokens | truncated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in benchmarks.items():
        k = row["k"]
        low, high = row[f"avg@{k}_ci95"]
        interval = f"{_pct(low)}-{_pct(high)}" if low is not None else "-"
        majority = _pct(row[f"maj@{k}"]) if f"maj@{k}" in row else "-"
        lines.append(
            f"| {name} | {row['problems']} | {k} | {_pct(row[f'avg@{k}'])} | {interval} | "
            f"{_pct(row[f'pass@{k}'])} | {majority} | {row['response_tokens']['mean']:.0f} | {_pct(row['truncated'])} |"
        )
    if benchmarks:
        mean = average_row(benchmarks)
        lines.append(f"| **average** | | | {_pct(mean['avg'])} | | {_pct(mean['pass'])} | | | |")
    return "\n".join(lines) + "\n"


def rebuild_results(samples_path: str | Path, ks: dict[str, int] | None = None, verifiers: dict | None = None) -> dict:
    """Results from a samples.jsonl; K per benchmark defaults to its samples per problem."""
    grouped: dict[str, list[Record]] = {}
    with Path(samples_path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = Record(**json.loads(line))
                grouped.setdefault(record.benchmark, []).append(record)
    benchmarks = {}
    for name, records in grouped.items():
        k = (ks or {}).get(name) or max(r.sample_index for r in records) + 1
        benchmarks[name] = summarize(records, k, (verifiers or {}).get(name))
    return {"benchmarks": benchmarks}
