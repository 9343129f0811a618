"""archer-eval: the Hydra entry point for benchmark evaluation (conf/eval.yaml).

    archer-eval suite=smoke                                   # the tiny default model, anywhere
    archer-eval suite=paper_math model.path=/models/my-policy trainer=gpu rollout=vllm
    archer-eval suite=paper_math model.ckpt_path=runs/.../checkpoints/last.ckpt
    archer-eval suite=paper_math model.path=... out_dir=evals/my-policy   # rerun: resumes
    archer-eval suite=paper_math only=[aime2024,amc] +suite.benchmarks.amc23.k=16
    archer-eval suite=files suite.paths=[held_out.jsonl] suite.kind=math model.path=...  # your own files

Writes to the run folder (or `out_dir`): `results.json`, `results.md` (the paper's table) and
`samples.jsonl` (every prompt, response, extracted answer, score and finish reason). Rerun
with the same `out_dir` to continue an interrupted evaluation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from archer.cli import run_or_exit
from archer.config_checks import ConfigError
from archer.data import benchmark_kind, load_benchmark
from archer.data.files import samples_from_rows
from archer.data.readers import read_rows
from archer.data.rows import ArcherForm
from archer.evaluation import SamplesLog, evaluate_benchmark, summarize
from archer.export import load_checkpoint
from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model, load_pretrained
from archer.report import results_table
from archer.train import build_scorer, config_dir, run_device
from archer.types import Sample


def load_policy(cfg: DictConfig):
    """(policy, tokenizer, description): model.ckpt_path, else model.path, else the tiny default."""
    if cfg.model.get("ckpt_path"):
        policy, tokenizer = load_checkpoint(cfg.model.ckpt_path)
        return policy, tokenizer, f"checkpoint {cfg.model.ckpt_path}"
    if cfg.model.get("path"):
        policy, tokenizer = load_pretrained(str(cfg.model.path), cfg.model.dtype)
        return policy, tokenizer, str(cfg.model.path)
    torch.manual_seed(cfg.seed)
    tokenizer = build_char_tokenizer()
    return build_tiny_model(tokenizer, TinyModelConfig(**cfg.model.tiny)), tokenizer, "tiny default (untrained)"


def fingerprint(cfg: DictConfig, model: str) -> dict:
    """What must match for a rerun to resume a folder's samples."""
    return {"model": model, "seed": cfg.seed, "problems_per_chunk": cfg.problems_per_chunk,
            "sampling": OmegaConf.to_container(cfg.suite.sampling, resolve=True),
            "benchmarks": OmegaConf.to_container(cfg.suite.benchmarks, resolve=True), "only": list(cfg.only) if cfg.get("only") else None,
            "files": _files_fingerprint(cfg.suite)}


def _files_fingerprint(suite: DictConfig) -> list | None:
    """Each evaluated file with its size and kind: an edited file does not resume old samples."""
    if not suite.get("paths"):
        return None
    sizes = [Path(str(p)).stat().st_size if Path(str(p)).is_file() else None for p in suite.paths]
    return [[str(p), size, suite.get("kind", "math"), suite.get("k", 8), suite.get("limit")] for p, size in zip(suite.paths, sizes)]


def _check_resumable(out_dir: Path, current: dict) -> None:
    path = out_dir / "eval_config.json"
    if path.is_file():
        before = json.loads(path.read_text())
        changed = sorted(key for key in current if before.get(key) != current[key])
        if changed and (out_dir / "samples.jsonl").is_file():
            raise ConfigError(f"{out_dir} holds samples of a different evaluation (changed: {', '.join(changed)}); "
                              "use another out_dir, or delete its samples.jsonl to start over")
    path.write_text(json.dumps(current, indent=2))


def suite_plan(cfg: DictConfig) -> dict[str, tuple[int, int | None, str, Callable]]:
    """name -> (k, limit, kind, load(limit)) for every benchmark to run: the suite's shipped
    benchmarks (`suite.benchmarks`, filtered by `only`) or, with `suite.paths`, your own files."""
    suite = cfg.suite
    benchmarks = dict(suite.benchmarks or {})
    if suite.get("paths"):
        benchmarks.update(file_benchmarks(suite))
    if not benchmarks:
        raise ConfigError("suite.benchmarks is empty; pick a suite (suite=smoke), add suite.benchmarks.<name>.k=..., "
                          "or evaluate files: suite=files suite.paths=[held_out.jsonl]")
    names = list(cfg.only) if cfg.get("only") else list(benchmarks)
    unknown = [name for name in names if name not in benchmarks]
    if unknown:
        raise ConfigError(f"only={unknown} are not in this suite ({list(benchmarks)}); "
                          f"add one with +suite.benchmarks.{unknown[0]}.k=4")
    plan = {}
    for name in names:
        spec = benchmarks[name]
        if not spec or "k" not in spec or int(spec["k"]) < 1:
            raise ConfigError(f"suite.benchmarks.{name}.k must be an integer >= 1, got {spec}")
        kind = spec.get("kind") or benchmark_kind(name)
        if kind not in cfg.kinds:
            raise ConfigError(f"no verifier/template for benchmark kind {kind!r}: add kinds.{kind} to the config "
                              f"or choose one of {list(cfg.kinds)}")
        load = spec.get("load") or partial(load_benchmark, name)
        plan[name] = (int(spec["k"]), spec.get("limit"), kind, load)
    return plan


def file_benchmarks(suite: DictConfig) -> dict[str, dict]:
    """One benchmark per file of `suite.paths`, named by its file name, read like `data=files`
    (archer's form `{"id", "problem", "answer"}` or verl's), graded as `suite.kind`."""
    entries: dict[str, dict] = {}
    for path in suite.paths:
        name = Path(str(path)).name.split(".")[0] or str(path)
        if name in entries or name in (suite.benchmarks or {}):
            raise ConfigError(f"suite.paths: two benchmarks would be named {name!r} ({path}); rename one of the files")
        entries[name] = {"k": suite.get("k", 8), "limit": suite.get("limit"), "kind": suite.get("kind", "math"),
                         "load": partial(_load_file, str(path))}
    return entries


def _load_file(path: str, limit: int | None) -> list[Sample]:
    samples = samples_from_rows(read_rows(path), "auto", ArcherForm("problem", "answer", "id"))
    return samples[:limit] if limit else samples


def evaluate(cfg: DictConfig, out_dir: Path, on_chunk=None) -> dict:
    """Run the suite; returns the results written to `out_dir/results.json`."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    if int(cfg.bootstrap_samples) < 0:
        raise ConfigError(f"bootstrap_samples must be >= 0 (0: no interval), got {cfg.bootstrap_samples}")
    plan = suite_plan(cfg)
    policy, tokenizer, model_name = load_policy(cfg)
    policy.to(run_device(cfg))
    _check_resumable(out_dir, fingerprint(cfg, model_name))
    engine = instantiate(cfg.rollout, **OmegaConf.to_container(cfg.suite.sampling, resolve=True)).bind(tokenizer)
    samples_log = SamplesLog(out_dir / "samples.jsonl")
    problem_sets = {name: load(limit) for name, (_, limit, _, load) in plan.items()}
    sizes = {name: len(problems) for name, problems in problem_sets.items()}

    def expected_lines(benchmark: str, chunk: int) -> int:
        if benchmark not in plan:
            return -1
        left = sizes[benchmark] - chunk * cfg.problems_per_chunk
        return min(cfg.problems_per_chunk, max(left, 0)) * plan[benchmark][0]

    done = samples_log.load(expected_lines)
    if done:
        print(f"[archer] resuming: {sum(map(len, done.values()))} samples already in {samples_log.path}", flush=True)
    results = {"model": model_name, "seed": cfg.seed, "sampling": fingerprint(cfg, model_name)["sampling"], "benchmarks": {}}
    for name, (k, _, kind, _) in plan.items():
        verifier = instantiate(cfg.kinds[kind].verifier)
        template = instantiate(cfg.kinds[kind].template)
        problems = problem_sets[name]
        scorer = build_scorer(cfg, verifier)
        try:
            records = evaluate_benchmark(policy, tokenizer, template, engine, scorer, verifier, name, problems, k,
                                         cfg.seed, cfg.problems_per_chunk, samples_log, done, on_chunk)
        finally:
            scorer.close()
        results["benchmarks"][name] = summarize(records, k, verifier, cfg.bootstrap_samples, cfg.seed)
        row = results["benchmarks"][name]
        print(f"[archer] {name}: avg@{k} {100 * row[f'avg@{k}']:.1f}  pass@{k} {100 * row[f'pass@{k}']:.1f}  "
              f"({row['problems']} problems)", flush=True)
        _write(out_dir, results)
    print(results_table(results), end="")
    print(f"[archer] {out_dir / 'results.md'}, results.json, samples.jsonl in {time.perf_counter() - started:.0f}s", flush=True)
    return results


def _write(out_dir: Path, results: dict) -> None:
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    (out_dir / "results.md").write_text(f"# Evaluation of {results['model']}\n\n" + results_table(results))


@hydra.main(version_base=None, config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> None:
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    run_or_exit(evaluate, cfg, out_dir)


if __name__ == "__main__":
    main()
