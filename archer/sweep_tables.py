"""Tables of a sweep over seeds: per-strategy intervals and paired differences (archer-summarize).

Each run is a dict of `archer.summarize.load_run`; the maths is in archer/sweep_stats.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

from archer.sweep_stats import describe, paired_by_seed

# metrics with intervals and paired differences: key, label, scale (100: shown in %)
INTERVAL_METRICS = [("pass@1", "held-out pass@1 (%)", 100), ("pass@k", "held-out pass@k (%)", 100),
                    ("val_auc", "validation avg@k, mean over the run (%)", 100),
                    ("monitor_entropy_high_final", "entropy, top-20% tokens (last 5 steps)", 1),
                    ("monitor_entropy_low_final", "entropy, other tokens (last 5 steps)", 1),
                    ("ref_kl_low_final", "KL to reference, low-entropy tokens (last 5 steps)", 1),
                    ("ref_kl_high_final", "KL to reference, high-entropy tokens (last 5 steps)", 1),
                    ("repetition_final", "repetition@20 (last 5 steps)", 1),
                    ("response_length_final", "response length, tokens (last 5 steps)", 1)]


def _fmt(value: float, scale: float) -> str:
    if value != value:  # nan
        return "-"
    value *= scale
    return f"{value:.1f}" if scale == 100 or abs(value) >= 10 else f"{value:.4f}" if abs(value) < 0.01 else f"{value:.3f}"


def _label(label: str, runs: list[dict]) -> str:
    """The label with the sweep's own k in place of "pass@k"."""
    k = next((r.get("k") for r in runs if r.get("k")), None)
    return label.replace("pass@k", f"pass@{k}") if k else label


def interval_rows(runs: list[dict]) -> list[dict]:
    """Per strategy and metric: n, mean, std, bootstrap and t 95% intervals over its seeds."""
    rows = []
    for key, label, scale in INTERVAL_METRICS:
        if not any(r.get(key) is not None for r in runs):
            continue
        for strategy in sorted({r["strategy"] for r in runs}):
            stats = describe([r.get(key) for r in runs if r["strategy"] == strategy])
            rows.append({"metric": key, "label": _label(label, runs), "scale": scale, "strategy": strategy, **stats})
    return rows


def paired_rows(runs: list[dict], baselines: list[str]) -> list[dict]:
    """Per baseline, other strategy and metric: the difference by seed (strategy - baseline)."""
    by = {(r["strategy"], r["seed"]): r for r in runs}
    strategies = sorted({r["strategy"] for r in runs})
    missing = [b for b in baselines if b not in strategies]
    if missing:
        raise SystemExit(f"--paired-against {' '.join(missing)}: no such strategy in the sweep ({', '.join(strategies)})")
    rows = []
    for baseline in baselines:
        for key, label, scale in INTERVAL_METRICS:
            if not any(r.get(key) is not None for r in runs):
                continue
            base = {seed: run.get(key) for (name, seed), run in by.items() if name == baseline}
            for strategy in strategies:
                if strategy == baseline:
                    continue
                other = {seed: run.get(key) for (name, seed), run in by.items() if name == strategy}
                rows.append({"baseline": baseline, "metric": key, "label": _label(label, runs), "scale": scale, "strategy": strategy,
                             **paired_by_seed(other, base)})
    return rows


def intervals_markdown(rows: list[dict]) -> str:
    out = []
    for key in dict.fromkeys(r["metric"] for r in rows):
        members = [r for r in rows if r["metric"] == key]
        scale = members[0]["scale"]
        out += [f"### {members[0]['label']}", "", "| strategy | seeds | mean | std | 95% t interval | 95% bootstrap |",
                "|---|---:|---:|---:|---:|---:|"]
        for r in sorted(members, key=lambda r: -r["mean"] if r["mean"] == r["mean"] else 0):
            out.append(f"| {r['strategy']} | {r['n']} | {_fmt(r['mean'], scale)} | {_fmt(r['std'], scale)} | "
                       f"{_fmt(r['t95'][0], scale)} to {_fmt(r['t95'][1], scale)} | "
                       f"{_fmt(r['boot95'][0], scale)} to {_fmt(r['boot95'][1], scale)} |")
        out.append("")
    return "\n".join(out)


def intervals_wide_markdown(rows: list[dict]) -> str:
    """One row per strategy, one column per metric: `mean (t-interval low to high)`."""
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    labels = {r["metric"]: r["label"] for r in rows}
    cells = {(r["strategy"], r["metric"]): r for r in rows}
    strategies = sorted({r["strategy"] for r in rows},
                        key=lambda s: -cells[(s, metrics[0])]["mean"] if cells[(s, metrics[0])]["mean"] == cells[(s, metrics[0])]["mean"] else 0)
    lines = ["| strategy | seeds | " + " | ".join(labels[m] for m in metrics) + " |", "|---|---:|" + "---:|" * len(metrics)]
    for strategy in strategies:
        row = [strategy, str(cells[(strategy, metrics[0])]["n"])]
        for metric in metrics:
            r = cells[(strategy, metric)]
            row.append(f"{_fmt(r['mean'], r['scale'])} ({_fmt(r['t95'][0], r['scale'])} to {_fmt(r['t95'][1], r['scale'])})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def paired_markdown(rows: list[dict]) -> str:
    out = []
    for baseline in dict.fromkeys(r["baseline"] for r in rows):
        out += [f"## Paired against {baseline} (strategy - {baseline}, by seed)", ""]
        for key in dict.fromkeys(r["metric"] for r in rows if r["baseline"] == baseline):
            members = [r for r in rows if r["baseline"] == baseline and r["metric"] == key]
            scale = members[0]["scale"]
            out += [f"### {members[0]['label']}", "",
                    "| strategy | seeds | mean difference | 95% t interval | 95% bootstrap | by seed |", "|---|---:|---:|---:|---:|---|"]
            for r in members:
                by_seed = ", ".join(_fmt(d, scale) for d in r["diffs"])
                out.append(f"| {r['strategy']} | {r['n']} | {_fmt(r['mean'], scale)} | {_fmt(r['t95'][0], scale)} to "
                           f"{_fmt(r['t95'][1], scale)} | {_fmt(r['boot95'][0], scale)} to {_fmt(r['boot95'][1], scale)} | {by_seed} |")
            out.append("")
    return "\n".join(out)


def write_rows(path: Path, rows: list[dict]) -> None:
    flat = [{k: (" ".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in r.items()} for r in rows]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
