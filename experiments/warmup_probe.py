"""How long a supervised warm-up before RL? Held-out pass@1 after each number of warm-up steps,
measured on problems of the *training* split set aside for it (never the experiment's held-out).

    python experiments/warmup_probe.py --dev 64 --at 10 20 40 -- experiment=smollm2_math

Everything after `--` is archer-train overrides: the model, data, template, verifier, sampling,
`model.warmup.batch_size` and `model.warmup.lr` come from them. The warm-up trains on the
training split minus its first `--dev` problems, then those `--dev` problems are sampled
`heldout.samples_per_problem` times at `heldout.temperature`, before the warm-up and after each
`--at` steps. The warm-up runs in segments up to each point (10, then 10 more, then 20 more),
each with its own AdamW and its own short schedule, so a run's single schedule of that length
differs: the figures rank lengths; the run measures its own before-RL figure.
Prints one line per point and a JSON list as the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import lightning as L
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from archer.evaluation import evaluate_heldout
from archer.train import build_components, build_policy, config_dir, run_device
from archer.warmup import WarmupConfig, supervised_warmup


def main() -> None:
    argv = sys.argv[1:]
    overrides = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=int, default=64, help="training problems set aside and measured")
    parser.add_argument("--at", type=int, nargs="+", default=[10, 20, 40], help="warm-up steps to measure after")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="train", overrides=overrides)
    L.seed_everything(cfg.seed, verbose=False)
    c = build_components(cfg)
    policy, tokenizer, _ = build_policy(cfg)
    policy.to(run_device(cfg))
    c.rollout.bind(tokenizer)
    engine = c.rollout.with_sampling(temperature=cfg.heldout.temperature)
    dev, train = c.data.train[: args.dev], c.data.train[args.dev:]
    warm = WarmupConfig(**{**OmegaConf.to_container(cfg.model.warmup), "steps": max(args.at)})
    bf16 = "bf16" in str(OmegaConf.select(cfg, "trainer.precision", default=""))
    k = cfg.heldout.samples_per_problem

    points, done = [], 0
    for steps in sorted({0, *args.at}):
        started = time.perf_counter()
        if steps > done:
            segment = replace(warm, steps=steps - done)
            supervised_warmup(policy, tokenizer, c.template, train, segment, seed=cfg.seed + done, bf16=bf16)
            done = steps
        result = evaluate_heldout(policy, tokenizer, c.template, dev, c.verifier, engine, k, seed=cfg.seed)
        point = {"warmup_steps": steps, "pass@1": result["pass@1"], f"pass@{k}": result[f"pass@{k}"],
                 "response_length": result["response_length"], "seconds": round(time.perf_counter() - started, 1)}
        points.append(point)
        print(f"warm-up {steps:4d} steps: pass@1 {100 * point['pass@1']:.1f}%  pass@{k} {100 * point[f'pass@{k}']:.1f}%  "
              f"length {point['response_length']:.1f}  ({point['seconds']} s)", flush=True)
    print(json.dumps(points))


if __name__ == "__main__":
    main()
