"""archer-train: the Hydra entry point (conf/train.yaml).

    archer-train                                   # the embedded CPU default
    archer-train constraint=grpo seed=1            # swap a component
    archer-train -m constraint=uniform,dual_token,entropy_mask seed=0,1,2
    archer-train experiment=archer_math_1_5b model.path=/models/R1-Distill-1.5B data.source.train_path=...

Every component is built (and validated) before any training work starts, so a wrong
key, value or data row fails in seconds with a message naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from archer.callbacks import RLStepCheckpoint, ValidationLoop
from archer.cli import run_or_exit
from archer.config_checks import ConfigError
from archer.data import DataError, PromptStream, load_benchmark
from archer.evaluation import evaluate_heldout
from archer.forward import enable_activation_checkpointing
from archer.loggers import RunLoggers, check_loggers
from archer.lora import LoraSettings, attach_lora, check_targets, has_lora, require_peft
from archer.models import (
    DTYPES,
    TinyModelConfig,
    build_char_tokenizer,
    build_tiny_model,
    decoder_layer_classes,
    load_pretrained,
    save_pretrained,
)
from archer.module import ArcherModule
from archer.verifiers import ScoringRunner
from archer.warmup import WarmupConfig, supervised_warmup

# The frozen reference model is in eval mode on purpose; Lightning warns about any such module.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
os.environ.setdefault("LITLOGGER_DISABLE_TIP", "1")


def config_dir() -> str:
    """conf/ inside the installed package (a wheel), else the repository's top-level conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    return str(packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "conf")


@dataclass
class Components:
    data: object
    template: object
    rollout: object
    verifier: object
    classifier: object
    constraint: object
    advantage: object
    schedule: object
    group_filter: object
    overlong: object


def build_components(cfg: DictConfig) -> Components:
    """Instantiate every component from the config; errors name the key and the fix."""
    built = {}
    for name, key in [("data", "data.source"), ("template", "data.template"), ("rollout", "rollout"),
                      ("verifier", "verifier"), ("classifier", "classifier"), ("constraint", "constraint"),
                      ("advantage", "advantage"), ("schedule", "rl"), ("group_filter", "filter"), ("overlong", "overlong")]:
        try:
            built[name] = instantiate(OmegaConf.select(cfg, key, throw_on_missing=True))
        except MissingMandatoryValue as err:
            raise ConfigError(f"{err.full_key} is required and has no value: add {err.full_key}=... to the command") from err
        except InstantiationException as err:
            root = err.__cause__ or err
            if isinstance(root, (ConfigError, DataError)):
                raise root from None
            raise ConfigError(f"could not build `{key}` ({OmegaConf.select(cfg, key + '._target_')}): {root}") from err
    _refuse_held_out_examples(built["template"], built["data"])
    return Components(**built)


def _refuse_held_out_examples(template, data) -> None:
    """A few-shot example that is a held-out problem shows its answer before it is graded."""
    held_out = {s.problem.strip() for s in getattr(data, "heldout", None) or []}
    for i, (problem, _) in enumerate(getattr(template, "examples", ())):
        if problem.strip() in held_out:
            raise ConfigError(f"data.template.examples[{i}] is a held-out problem ({problem[:60]!r}...): "
                              "its worked answer would leak into every prompt; take examples from the training split")


def build_policy(cfg: DictConfig):
    """(policy, tokenizer, is_tiny): from model.path, or the in-process tiny default."""
    path = OmegaConf.select(cfg, "model.path", throw_on_missing=False, default=None)
    if cfg.model.get("dtype") not in (None, *DTYPES):
        raise ConfigError(f"model.dtype must be one of {list(DTYPES)}, got {cfg.model.dtype!r}")
    if OmegaConf.is_missing(cfg.model, "path"):
        raise ConfigError("model.path is required by this config: add model.path=/path/to/model (a Hugging Face folder or hub id)")
    if path:
        master = cfg.model.get("master_dtype", "float32")
        if master != "float32" and not LoraSettings.from_config(cfg.model.get("lora")).enabled:  # LoRA: base frozen
            print(f"[archer] model.master_dtype={master}: pure {master} training (weights and AdamW state in {master}); "
                  "updates smaller than its resolution are lost. Use float32 master weights with "
                  "trainer.precision=bf16-mixed unless you mean it.", flush=True)
        policy, tokenizer = load_pretrained(str(path), master, key="model.master_dtype")
        return policy, tokenizer, False
    tokenizer = build_char_tokenizer()
    return build_tiny_model(tokenizer, TinyModelConfig(**cfg.model.tiny)), tokenizer, True


def lora_settings(cfg: DictConfig, policy) -> LoraSettings:
    """`model.lora`, checked against the policy (peft installed, targets present) when it is on."""
    settings = LoraSettings.from_config(cfg.model.get("lora"))
    if settings.enabled and not has_lora(policy):
        require_peft()
        check_targets(policy, settings)
    return settings


def run_device(cfg: DictConfig) -> torch.device:
    """Where the policy, its reference copy, warm-up and held-out evaluation live before and
    after `fit`: the trainer's accelerator, and on GPUs this rank's own device (`LOCAL_RANK`,
    set by Lightning's launcher, torchrun or SLURM), made current so that nothing lands on GPU 0."""
    wants_gpu = OmegaConf.select(cfg, "trainer.accelerator", default="auto") in ("gpu", "cuda", "auto")
    if not (wants_gpu and torch.cuda.is_available()):
        return torch.device("cpu")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    torch.cuda.set_device(device)
    return device


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """The whole run; returns the summary written to `run_dir/summary.json`."""
    started = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    c = build_components(cfg)
    check_loggers(cfg.get("logger"))  # a missing wandb / mlflow package fails now, not after warm-up
    policy, tokenizer, _ = build_policy(cfg)
    lora_settings(cfg, policy)  # model.lora checked now; the adapter goes on after the warm-up (_train)
    device = run_device(cfg)
    policy.to(device)
    if cfg.model.get("gradient_checkpointing"):
        enable_activation_checkpointing(policy)  # the update's forward; sampling runs in eval mode, unaffected
    c.rollout.bind(tokenizer)
    scorer = build_scorer(cfg, c.verifier)
    try:
        return _train(cfg, run_dir, c, policy, tokenizer, device, scorer, started)
    finally:
        scorer.close()


def build_scorer(cfg: DictConfig, verifier) -> ScoringRunner:
    """The scoring runner of `cfg.scoring` (worker processes, per-response timeout)."""
    options = OmegaConf.to_container(cfg.scoring, resolve=True) if cfg.get("scoring") else {}
    try:
        return ScoringRunner(verifier, **options)
    except TypeError as err:
        raise ConfigError(f"scoring: {err}; the keys are workers, timeout, startup_timeout") from err


def _train(cfg, run_dir, c, policy, tokenizer, device, scorer, started) -> dict:
    heldout = c.data.heldout[: cfg.heldout.max_problems]
    eval_engine = c.rollout.with_sampling(temperature=cfg.heldout.temperature)  # the same engine (one vLLM)

    def evaluate() -> dict:
        return evaluate_heldout(policy, tokenizer, c.template, heldout, scorer.for_accuracy(), eval_engine,
                                cfg.heldout.samples_per_problem, seed=cfg.seed)

    resuming = cfg.ckpt_path is not None
    if resuming and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} does not exist; point it at a run's checkpoints/last.ckpt")
    # a resumed run replaces these weights from the checkpoint: no warm-up, no evaluation of them;
    # its before-RL figures and time so far come from the checkpoint's record
    if (OmegaConf.select(cfg, "model.warmup.steps", default=0) or 0) > 0 and not resuming:  # a model config may have no warmup
        warm_up(cfg, policy, tokenizer, c)
    # LoRA goes on after the warm-up (which trains the base itself) and before a checkpoint
    # restores the adapter; the base stays as loaded or warmed up
    attach_lora(policy, lora_settings(cfg, policy), base_model=OmegaConf.select(cfg, "model.path"))
    before = evaluate() if heldout and not resuming else None
    if before:
        print(f"[archer] held-out pass@1 before RL: {100 * before['pass@1']:.1f}%", flush=True)

    module = ArcherModule(
        policy, tokenizer, c.template, PromptStream(c.data.train, c.schedule.prompts_per_step, cfg.seed), c.rollout,
        scorer, c.classifier, c.constraint, c.advantage, c.schedule, instantiate(cfg.optimizer),
        instantiate(cfg.scheduler) if cfg.scheduler else None, c.group_filter, c.overlong, seed=cfg.seed,
        reference_dtype=DTYPES.get(cfg.model.get("dtype")), monitor=bool(OmegaConf.select(cfg, "monitor.enabled", default=False)),
    )
    module.clock, module.record = started, {"heldout_before": before}
    module.resume_path = Path(cfg.ckpt_path) if resuming else None
    loggers = RunLoggers(cfg.get("logger"), run_dir)  # the chosen ones plus <run>/csv/metrics.csv
    callbacks = [RLStepCheckpoint(run_dir / "checkpoints", cfg.checkpoint.every_n_steps,
                                  cfg.checkpoint.get("keep_last", 0))]
    validation = build_validation(cfg, c, heldout, scorer, eval_engine)
    if validation is not None:
        callbacks.append(validation)
    # One Lightning epoch is one RL step (archer/data/stream.py, StepLoader).
    trainer = instantiate(cfg.trainer, logger=loggers.lightning, default_root_dir=str(run_dir),
                          max_epochs=c.schedule.steps, callbacks=callbacks, **strategy_override(cfg, policy))
    try:
        trainer.fit(module, ckpt_path=cfg.ckpt_path)
        logged_to = loggers.locations() if trainer.is_global_zero else {}
    finally:
        loggers.close()

    policy.to(device)  # Lightning's teardown moves the module back to the CPU
    stopped = module.stopped_by is not None  # SIGTERM: the checkpoint is saved, end now
    after = evaluate() if heldout and not stopped else None
    export = cfg.export and trainer.is_global_zero and not stopped
    export_dir = save_pretrained(policy, tokenizer, run_dir / "hf_model") if export else None
    before = module.record.get("heldout_before")  # a resumed run's comes from its checkpoint
    this_process = time.perf_counter() - started
    summary = {
        "pass1_before": before["pass@1"] if before else None,
        "pass1_after": after["pass@1"] if after else None,
        # the whole run: up to the checkpoint it resumed from (if any), plus this process
        "seconds": round(module.record.get("seconds", 0.0) + this_process, 1),
        "seconds_this_process": round(this_process, 1),
        "resumed_from": str(cfg.ckpt_path) if resuming else None,
        "stopped_by": module.stopped_by,
        "rl_steps": module.rl_step,
        "heldout_before": before,
        "heldout_after": after,
        "heldout_problems": len(heldout),
        "constraint": OmegaConf.select(cfg, "constraint._target_"),
        "classifier": OmegaConf.select(cfg, "classifier._target_"),
        "seed": cfg.seed,
        "hf_model": str(export_dir) if export_dir else None,
        "tensorboard": loggers.tensorboard_dir,
        # where each logger wrote; metrics_csv is always there (archer-summarize reads it)
        "loggers": logged_to,
        "metrics_csv": str(loggers.metrics_csv),
        "validation": validation.history if validation is not None else [],
    }
    if trainer.is_global_zero:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        _report(summary, run_dir)
    return summary


def strategy_override(cfg: DictConfig, policy) -> dict:
    """`{"strategy": ...}` when the trainer's strategy must be built around the policy: FSDP's
    `auto_wrap_policy: decoder_layers` becomes the policy's own decoder-layer classes."""
    strategy = OmegaConf.select(cfg, "trainer.strategy")
    if not isinstance(strategy, DictConfig) or strategy.get("auto_wrap_policy") != "decoder_layers":
        return {}
    options = OmegaConf.to_container(strategy, resolve=True)
    options["auto_wrap_policy"] = decoder_layer_classes(policy)
    return {"strategy": hydra.utils.get_class(options.pop("_target_"))(**options)}


def warm_up(cfg: DictConfig, policy, tokenizer, c: Components) -> None:
    """The supervised warm-up (`model.warmup`), or its result from `model.warmup_cache` when a run
    with the same seed, model, warm-up and data settings stored it there (sweeps share it)."""
    warm = WarmupConfig(**cfg.model.warmup)
    cache = None
    if cfg.model.get("warmup_cache"):
        key = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("data",)}
        key.update(seed=cfg.seed, tiny=OmegaConf.to_container(cfg.model.tiny), warmup=OmegaConf.to_container(cfg.model.warmup))
        key.update({"path": str(cfg.model.path)} if cfg.model.get("path") else {})  # the tiny default's key is unchanged
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        cache = Path(cfg.model.warmup_cache).expanduser() / f"warmup-{digest}.pt"
    # parallel sweep jobs of one seed: the first warms up, the others wait for its file and load it
    with _exclusive(cache):
        if cache is not None and cache.is_file():
            try:
                policy.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
                print(f"[archer] warm-up: loaded from {cache}", flush=True)
                return
            except Exception as err:  # a broken cache file costs a warm-up, never the run
                print(f"[archer] warm-up cache {cache} unreadable ({err}); warming up again", flush=True)
        demonstrated = sum("solution" in s.info for s in c.data.train)
        print(f"[archer] warm-up: {warm.steps} supervised steps on {demonstrated} gold solutions", flush=True)
        bf16 = "bf16" in str(OmegaConf.select(cfg, "trainer.precision", default=""))  # as the RL update
        losses = supervised_warmup(policy, tokenizer, c.template, c.data.train, warm, seed=cfg.seed, bf16=bf16)
        print(f"[archer] warm-up: loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
        if cache is not None:
            partial = cache.with_suffix(f".{os.getpid()}.tmp")
            torch.save(policy.state_dict(), partial)
            partial.replace(cache)  # atomic: a job without the lock (no fcntl) never reads half a file


@contextlib.contextmanager
def _exclusive(cache: Path | None):
    """An exclusive lock on `<cache>.lock` while held (none without a cache or without fcntl)."""
    if cache is None:
        yield
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: parallel jobs may warm up twice, harmlessly
        yield
        return
    with open(cache.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_validation(cfg: DictConfig, c: Components, heldout: list, scorer, engine) -> ValidationLoop | None:
    """The validation callback of `cfg.validation`, or None when it is off."""
    v = cfg.get("validation")
    if not v or not v.every_n_steps:
        return None
    sets = {"heldout": heldout[: v.max_problems]} if heldout else {}
    for name in v.benchmarks or []:
        sets[name] = load_benchmark(name, v.max_problems)
    if not sets:
        return None
    # validation reports solving the problem: a reward with parts is graded by its accuracy part
    grader = scorer.for_accuracy()
    return ValidationLoop(sets, c.template, grader.verifier, grader, engine, v.every_n_steps, v.k, cfg.seed)


def _report(summary: dict, run_dir: Path) -> None:
    if summary.get("stopped_by"):
        print(f"[archer] stopped by {summary['stopped_by']}; resume with ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}")
    elif summary["pass1_before"] is not None and summary["pass1_after"] is not None:
        b, a = 100 * summary["pass1_before"], 100 * summary["pass1_after"]
        print(f"[archer] held-out pass@1: {b:.1f}% -> {a:.1f}% ({a - b:+.1f} points, "
              f"{summary['heldout_problems']} problems) in {summary['seconds']:.0f}s, {summary['rl_steps']} RL steps")
    if summary["tensorboard"]:
        print(f"[archer] TensorBoard logs: {summary['tensorboard']}   (tensorboard --logdir {summary['tensorboard']})")
    for name, where in summary["loggers"].items():
        if name != "tensorboard":
            shown = ", ".join(f"{k} {v}" for k, v in where.items()) if isinstance(where, dict) else where
            print(f"[archer] {name}: {shown}", flush=True)
    if summary["hf_model"]:
        print(f"[archer] policy (Hugging Face format): {summary['hf_model']}   (reload with model.path=...)")
    print(f"[archer] checkpoints: {run_dir / 'checkpoints'}   summary: {run_dir / 'summary.json'}", flush=True)


@hydra.main(version_base=None, config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> None:
    summary = run_or_exit(train, cfg, Path(HydraConfig.get().runtime.output_dir))
    if summary and summary.get("stopped_by"):
        raise SystemExit(143)  # ended by SIGTERM: the conventional status, after the checkpoint was saved


if __name__ == "__main__":
    main()
