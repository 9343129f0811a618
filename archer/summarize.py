"""archer-summarize: tables and plots from a sweep's run folders (summary.json + metrics over RL steps).

    archer-summarize sweeps/ablations --out experiments/results/ablations
    archer-summarize sweeps/testbed --out experiments/results/testbed --paired-against grpo archer

Each run folder (anything holding a `summary.json` written by archer-train) is one row; its
strategy is the `ablation=` choice of its Hydra overrides (else its constraint and
classifier names). Writes `runs.csv` (one row per run), `summary.csv` and `summary.md`
(mean +- std over seeds per strategy), `intervals.md`/`.csv` (mean with 95% t and bootstrap
intervals per metric, archer/sweep_stats.py), with `--paired-against` `paired.md`/`.csv`
(differences by seed against those strategies) and, with matplotlib installed, PNG plots of
held-out accuracy and pass@k, per-class entropy, KL to the reference (runs with
monitor.enabled), repetition and response length over RL steps, one line per strategy with a
band over seeds (min to max).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from archer.sweep_stats import area_under_curve
from archer.sweep_tables import (
    interval_rows,
    intervals_markdown,
    intervals_wide_markdown,
    paired_markdown,
    paired_rows,
    write_rows,
)

# TensorBoard scalars plotted over RL steps (one point per step): tag -> plot label.
TRAIN_CURVES = {
    "loss/entropy_high": "entropy, high-entropy class",
    "loss/entropy_low": "entropy, low-entropy class",
    "train/repetition_20gram": "20-gram repetition ratio",
    "train/response_length": "response length (tokens)",
    "train/accuracy": "training accuracy",
    "train/reward": "training reward (mean over the step's responses)",
    # archer/monitor.py (monitor.enabled): the same classes and a KL to the reference for every strategy
    "monitor/entropy_high": "entropy, top-20% class (same split for all)",
    "monitor/entropy_low": "entropy, other 80% (same split for all)",
    "monitor/ref_kl_low": "KL to reference, low-entropy (knowledge) tokens",
    "monitor/ref_kl_high": "KL to reference, high-entropy (reasoning) tokens",
}


def find_runs(roots: list[Path]) -> list[Path]:
    return sorted({p.parent for root in roots for p in Path(root).rglob("summary.json")})


def strategy_of(run_dir: Path, summary: dict) -> str:
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        for line in overrides.read_text().splitlines():
            item = line.strip().lstrip("- ").strip("'\"")
            if item.startswith("ablation="):
                return item.split("=", 1)[1]
    constraint = (summary.get("constraint") or "?").rsplit(".", 1)[-1]
    classifier = (summary.get("classifier") or "?").rsplit(".", 1)[-1]
    return f"{constraint}+{classifier}"


def read_scalars(run_dir: Path, summary: dict) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar of the run: (steps, values) in step order, from its TensorBoard log, else from
    the metrics CSV every run keeps whatever its loggers (wandb or MLflow alone leave no events file)."""
    logged = Path(summary["tensorboard"]) if summary.get("tensorboard") else None
    if logged is None or not logged.is_dir():
        found = sorted(run_dir.rglob("events.out.tfevents*"))
        if not found:
            local = run_dir / "csv" / "metrics.csv"  # a copied run folder: its own file, not the path recorded
            return read_csv_scalars(local if local.is_file() else Path(summary.get("metrics_csv") or local))
        logged = found[-1].parent
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logged), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: ([e.step for e in events.Scalars(tag)], [e.value for e in events.Scalars(tag)])
            for tag in events.Tags()["scalars"]}


def read_csv_scalars(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every column of Lightning's metrics.csv: (steps, values) over the rows that have a value."""
    if not path.is_file():
        return {}
    series: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    with path.open(newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(float(row.get("step") or 0)))
    for row in rows:
        step = int(float(row.get("step") or 0))
        for key, value in row.items():
            if key not in ("step", "epoch") and value not in ("", None):
                series[key][0].append(step)
                series[key][1].append(float(value))
    return dict(series)


def load_run(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    scalars = read_scalars(run_dir, summary)
    after, before = summary.get("heldout_after") or {}, summary.get("heldout_before") or {}
    k_key = next((key for key in after if key.startswith("pass@") and key != "pass@1"), None)
    validation = summary.get("validation") or []
    val_key = next((key for key in (validation[0] if validation else {}) if key.startswith("val/heldout/avg@")), None)
    val_pass_key = next((key for key in (validation[0] if validation else {})
                         if key.startswith("val/heldout/pass@") and key != "val/heldout/pass@1"), None)
    val_curve = ([v["rl_step"] for v in validation], [v[val_key] for v in validation]) if val_key else ([], [])
    return {
        "strategy": strategy_of(run_dir, summary),
        "seed": summary.get("seed"),
        "run": str(run_dir),
        "pass@1_before": before.get("pass@1"),
        "pass@1": after.get("pass@1"),
        "pass@k": after.get(k_key) if k_key else None,
        "pass@k_before": before.get(k_key) if k_key else None,
        "k": int(k_key.split("@")[1]) if k_key else None,
        "generated_tokens": sum(scalars.get("train/generated_tokens", ([], []))[1]),
        "repetition_final": _last(scalars.get("train/repetition_20gram")),
        "entropy_high_final": _last(scalars.get("loss/entropy_high")),
        "entropy_low_final": _last(scalars.get("loss/entropy_low")),
        "monitor_entropy_high_final": _last(scalars.get("monitor/entropy_high")),
        "monitor_entropy_low_final": _last(scalars.get("monitor/entropy_low")),
        "ref_kl_low_final": _last(scalars.get("monitor/ref_kl_low")),
        "ref_kl_high_final": _last(scalars.get("monitor/ref_kl_high")),
        "response_length_final": _last(scalars.get("train/response_length")),
        # the validation curve's mean level over the run (trapezoids over its RL steps)
        "val_auc": area_under_curve(*val_curve),
        "seconds": summary.get("seconds"),
        "curves": {
            "val_accuracy": val_curve,
            "val_pass_k": ([v["rl_step"] for v in validation], [v[val_pass_key] for v in validation]) if val_pass_key else ([], []),
            **{tag: series for tag, series in scalars.items() if tag in TRAIN_CURVES},
        },
    }


def _last(series):
    """The mean of the last 5 logged values of a (steps, values) series (a final value less noisy)."""
    if not series or not series[1]:
        return None
    tail = series[1][-5:]
    return sum(tail) / len(tail)


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


SUMMARY_COLUMNS = [("pass@1", "held-out pass@1 (%)", 100), ("pass@k", "held-out pass@k (%)", 100),
                   ("gain", "gain over warm-up (points)", 100), ("repetition_final", "repetition@20 (last 5 steps)", 1),
                   ("entropy_high_final", "entropy high (last 5 steps)", 1), ("entropy_low_final", "entropy low (last 5 steps)", 1),
                   ("generated_tokens", "tokens generated", 1)]


def summarize_runs(runs: list[dict]) -> list[dict]:
    """One row per strategy: mean and std over its seeds of each SUMMARY_COLUMNS value."""
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        run = {**run, "gain": None if run["pass@1"] is None or run["pass@1_before"] is None else run["pass@1"] - run["pass@1_before"]}
        by_strategy[run["strategy"]].append(run)
    rows = []
    for strategy, members in by_strategy.items():
        row = {"strategy": strategy, "seeds": len(members), "k": members[0]["k"]}
        for key, _, scale in SUMMARY_COLUMNS:
            mean, std = _mean_std([m[key] for m in members])
            row[f"{key}_mean"], row[f"{key}_std"] = mean * scale, std * scale
        rows.append(row)
    return sorted(rows, key=lambda r: -r["pass@1_mean"] if r["pass@1_mean"] == r["pass@1_mean"] else 0)


def markdown_table(rows: list[dict]) -> str:
    k = next((r["k"] for r in rows if r["k"]), "k")
    head = ["strategy", "seeds"] + [label.replace("pass@k", f"pass@{k}") for _, label, _ in SUMMARY_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["strategy"], str(row["seeds"])]
        for key, _, _ in SUMMARY_COLUMNS:
            mean, std = row[f"{key}_mean"], row[f"{key}_std"]
            digits = 0 if key == "generated_tokens" else 1 if key in ("pass@1", "pass@k", "gain") else 3
            cells.append(f"{mean:.{digits}f} +- {std:.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(runs: list[dict], out: Path) -> list[Path]:
    """PNG plots, one line per strategy (mean over seeds) with a min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {
        "accuracy.png": [("val_accuracy", "held-out avg@k (validation)"), ("val_pass_k", "held-out pass@k (validation)")],
        "reward.png": [("train/reward", TRAIN_CURVES["train/reward"])],
        "entropy.png": [("loss/entropy_high", TRAIN_CURVES["loss/entropy_high"]), ("loss/entropy_low", TRAIN_CURVES["loss/entropy_low"])],
        "repetition.png": [("train/repetition_20gram", TRAIN_CURVES["train/repetition_20gram"])],
        "response_length.png": [("train/response_length", TRAIN_CURVES["train/response_length"])],
        "monitor_entropy.png": [("monitor/entropy_high", TRAIN_CURVES["monitor/entropy_high"]),
                                ("monitor/entropy_low", TRAIN_CURVES["monitor/entropy_low"])],
        "reference_kl.png": [("monitor/ref_kl_low", TRAIN_CURVES["monitor/ref_kl_low"]),
                             ("monitor/ref_kl_high", TRAIN_CURVES["monitor/ref_kl_high"])],
    }
    written = []
    strategies = sorted({r["strategy"] for r in runs})
    for filename, panels in figures.items():
        panels = [(curve, label) for curve, label in panels if any(r["curves"].get(curve, ([], []))[0] for r in runs)]
        if not panels:
            continue  # nothing logged for it (e.g. no validation during training): no empty figure
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
        for ax, (curve, label) in zip(axes[0], panels):
            for strategy in strategies:
                series = [r["curves"].get(curve, ([], [])) for r in runs if r["strategy"] == strategy]
                series = [s for s in series if s[0]]
                if not series:
                    continue
                # seeds may skip different steps (every group filtered): align on the steps all have
                common = sorted(set.intersection(*(set(s[0]) for s in series)))
                lookup = [dict(zip(*s)) for s in series]
                steps, values = common, [[table[step] for table in lookup] for step in common]
                line, = ax.plot(steps, [statistics.fmean(v) for v in values], label=strategy, linewidth=1.4)
                ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color=line.get_color(), alpha=0.15)
            ax.set_xlabel("RL step")
            ax.set_title(label)
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=7, loc="best")
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        plt.close(fig)
        written.append(out / filename)
    return written


def write_report(roots: list[Path], out: Path, plots: bool = True, per_seed: bool = False,
                 paired_against: list[str] | None = None) -> dict:
    """runs.csv, summary.csv, summary.md, intervals.md/.csv (and PNGs) in `out`; returns what was written.
    `per_seed`: every run is its own row and plot line (`<strategy> seed <S>`), e.g. to show
    how the seeds of one configuration diverge. `paired_against`: strategies every other one is
    compared with seed by seed (paired.md, paired.csv)."""
    run_dirs = find_runs(roots)
    if not run_dirs:
        raise SystemExit(f"no run folders with a summary.json under {', '.join(map(str, roots))}")
    runs = [load_run(d) for d in run_dirs]
    if per_seed:
        runs = [{**r, "strategy": f"{r['strategy']} seed {r['seed']}"} for r in runs]
    rows = summarize_runs(runs)
    out.mkdir(parents=True, exist_ok=True)
    fields = [k for k in runs[0] if k != "curves"]
    with (out / "runs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows([{k: r[k] for k in fields} for r in runs])
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows)
    (out / "summary.md").write_text(table)
    intervals = interval_rows(runs)
    if intervals:
        (out / "intervals.md").write_text(intervals_wide_markdown(intervals) + "\n" + intervals_markdown(intervals))
        write_rows(out / "intervals.csv", intervals)
    if paired_against:
        paired = paired_rows(runs, paired_against)
        (out / "paired.md").write_text(paired_markdown(paired))
        write_rows(out / "paired.csv", paired)
    pngs = []
    if plots:
        try:
            pngs = plot_curves(runs, out)
        except ImportError:
            print("[archer] matplotlib is not installed: no plots (pip install 'archer-rlvr[plots]')", file=sys.stderr)
    return {"runs": len(runs), "strategies": [r["strategy"] for r in rows], "table": table, "plots": [str(p) for p in pngs]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="archer-summarize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="+", type=Path, help="sweep folders (searched recursively for runs)")
    parser.add_argument("--out", type=Path, required=True, help="where the tables and plots go")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--per-seed", action="store_true", help="one row and plot line per run instead of per strategy")
    parser.add_argument("--paired-against", nargs="+", metavar="STRATEGY", default=None,
                        help="compare every other strategy with these, seed by seed (paired.md)")
    args = parser.parse_args(argv)
    written = write_report(args.roots, args.out, plots=not args.no_plots, per_seed=args.per_seed,
                           paired_against=args.paired_against)
    print(written["table"], end="")
    print(f"[archer] {written['runs']} runs -> {args.out}/summary.md, summary.csv, runs.csv"
          + (f", {len(written['plots'])} plots" if written["plots"] else ""))


if __name__ == "__main__":
    main()
