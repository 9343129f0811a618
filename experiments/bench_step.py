"""Seconds per RL step: Archer's phases, and Archer against TRL's GRPOTrainer on identical work.

    python experiments/bench_step.py                       # default shape, Archer alone
    python experiments/bench_step.py --trl                 # + TRL (pip install "archer-rlvr[bench]")
    python experiments/bench_step.py --trl --new-tokens 64 # the 4x longer responses shape
    python experiments/bench_step.py --trl --json          # last line: one JSON object
    python experiments/bench_step.py --model smollm2 --trl --json   # a real pretrained chat model

The workload: a tiny Qwen2-style model (random init, seeded, saved once and loaded by both),
the character tokenizer, prompts of the synthetic addition task, the exact-sum reward, P
prompts x G samples per step, up to T new tokens at temperature 1.0 (top_p 1, no top-k), one
optimizer update per rollout (no old-policy pass is needed), clip 0.2, k3 KL 0.001 against a
frozen reference, token-mean loss, AdamW. TRL runs the same with `loss_type="dapo"`,
`beta=0.001`, `num_iterations=1`.

`--model smollm2`: SmolLM2-135M-Instruct (float32, fetched and cached on first use), its own
tokenizer, chat-template prompts of svamp1_train (problem + a short-answer instruction; TRL
gets the same messages and applies the same template), the math verifier reading "the answer
is N", 128 new tokens by default.

Measurement: warm-up steps are dropped, then each Archer step is followed by one TRL step in
the same process (alternating, so machine noise hits both), for every Archer constraint in
`--constraints` (each gets its own module from the same initial weights). Printed: median
seconds per step and per phase (rollout, reward, old/ref pass, update), tokens per second,
peak memory of the update phase (CUDA peak allocation, or CPU resident-set growth), the
archer/TRL ratio of medians, and each constraint's cost relative to the first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import lightning as L
import torch

from archer.advantages import GRPOAdvantage
from archer.classifiers import ResponseQuantileClassifier
from archer.constraints import DualTokenConstraint, UniformConstraint
from archer.data import ChatTemplate, PlainTemplate, PromptStream, SyntheticArithmetic, load_benchmark
from archer.group_filters import KeepAllGroups, NoOverlongHandling
from archer.models import (
    TinyModelConfig,
    build_char_tokenizer,
    build_tiny_model,
    load_pretrained,
    save_pretrained,
)
from archer.module import ArcherModule
from archer.rollout import HFRolloutEngine, LeanRolloutEngine
from archer.schedules import RLSchedule
from archer.verifiers import ArithmeticVerifier, MathVerifier, ScoringRunner

LR = 1e-5


def constraint(name: str):
    """The loss of each compared strategy; `uniform` is the GRPO loss TRL computes."""
    if name == "uniform":
        return UniformConstraint(eps_low=0.2, eps_high=0.2, kl_coef=0.001, aggregation="token_mean")
    if name == "dual_token":
        return DualTokenConstraint()
    raise SystemExit(f"unknown constraint {name!r}: use uniform or dual_token")


class Alternate(L.Callback):
    """Times each Archer step (one Lightning epoch) and runs one `other()` step after it."""

    def __init__(self, other=None):
        self.other, self.archer, self.others, self.phases = other, [], [], []

    def on_train_epoch_start(self, trainer, pl_module):
        _sync()
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        _sync()
        self.archer.append(time.perf_counter() - self.started)
        self.phases.append({k: v for k, v in pl_module.last_metrics.items() if k.startswith(("time/", "memory/", "perf/"))})
        if self.other is not None:
            _sync()
            started = time.perf_counter()
            self.other()
            _sync()
            self.others.append(time.perf_counter() - started)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# --model smollm2: the prompt frame and reward of experiment=smollm2_math
SHORT_ANSWER = "Solve it in one line and end with: The answer is <number>."


class Workload:
    """What both frameworks train on: a model folder, prompts, their template and the reward."""

    def __init__(self, args):
        if args.model == "tiny":
            torch.manual_seed(0)
            tokenizer = build_char_tokenizer()
            sizes = TinyModelConfig(hidden_size=args.hidden, num_layers=args.layers, num_heads=4, intermediate_size=3 * args.hidden)
            self.model_dir = save_pretrained(build_tiny_model(tokenizer, sizes), tokenizer, Path(tempfile.mkdtemp(prefix="archer-bench-")))
            self.train = SyntheticArithmetic(train_size=2000, heldout_size=1, seed=0).train
            self.template, self.verifier = PlainTemplate("{problem}\n", add_bos=False), ArithmeticVerifier()
        else:
            from archer.pretrained import smollm2_folder

            self.model_dir = smollm2_folder()
            self.train = load_benchmark("svamp1_train")
            self.template = ChatTemplate(instruction=SHORT_ANSWER)
            self.verifier = MathVerifier(answer_reader="boxed_or_stated_number")

    def trl_prompt(self, sample):
        """The same prompt for TRL: plain text, or chat messages its trainer templates itself."""
        if isinstance(self.template, ChatTemplate):
            return [{"role": "user", "content": f"{sample.problem} {self.template.instruction}"}]
        return self.template.text(sample, None)


def run_archer(name, work: Workload, args, device, other=None) -> Alternate:
    policy, tokenizer = load_pretrained(str(work.model_dir), "float32")
    engine_class = LeanRolloutEngine if args.sampler == "lean" else HFRolloutEngine
    engine = engine_class(max_new_tokens=args.new_tokens, temperature=1.0, top_p=1.0, top_k=0).bind(tokenizer)
    schedule = RLSchedule(steps=args.warmup + args.steps, prompts_per_step=args.prompts, samples_per_prompt=args.samples,
                          ppo_epochs=1, mini_batch_prompts=args.prompts, micro_batch_size=args.micro_batch,
                          log_text_every=0, share_prompt_forward=not args.no_share)
    module = ArcherModule(
        policy, tokenizer, work.template, PromptStream(work.train, args.prompts, seed=0), engine,
        ScoringRunner(work.verifier, workers=0), ResponseQuantileClassifier(), constraint(name), GRPOAdvantage(),
        # the fused AdamW kernel, as TRL (transformers: optim="adamw_torch_fused")
        schedule, partial(torch.optim.AdamW, lr=LR, weight_decay=0.0, fused=True), None, KeepAllGroups(), NoOverlongHandling(),
        seed=0)
    module.track_memory = True
    timing = Alternate(other)
    trainer = L.Trainer(accelerator=device, devices=1, max_epochs=schedule.steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timing])
    trainer.fit(module)
    return timing


def build_trl(work: Workload, args, device):
    """A GRPOTrainer on the same weights, tokenizer, prompts, reward and shapes, and a function
    that runs one full step of it (generate, score, loss, backward, clip, optimizer step)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    verifier = work.verifier

    def reward(completions, answer, **_):
        from archer.types import Sample

        # conversational prompts give completions as message lists
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        gold = [int(a) if isinstance(verifier, ArithmeticVerifier) else a for a in answer]
        return [verifier(text, Sample("b", "", g)) for text, g in zip(texts, gold)]

    policy, tokenizer = load_pretrained(str(work.model_dir), "float32")
    rows = [{"prompt": work.trl_prompt(s), "answer": str(s.answer)} for s in work.train]
    # one generation of P x G completions, then P x G / micro backward passes of `micro` rows
    # accumulated into one optimizer step: TRL's own way (steps_per_generation = accumulation)
    accumulation = args.prompts * args.samples // args.micro_batch
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="archer-bench-trl-"), per_device_train_batch_size=args.micro_batch,
        num_generations=args.samples, max_completion_length=args.new_tokens, temperature=1.0, top_p=1.0, top_k=0,
        beta=0.001, epsilon=0.2, epsilon_high=0.2, num_iterations=1, steps_per_generation=accumulation,
        gradient_accumulation_steps=accumulation,
        loss_type="dapo", scale_rewards="group", learning_rate=LR, weight_decay=0.0, max_grad_norm=1.0,
        lr_scheduler_type="constant", logging_steps=10**9, report_to=[], save_strategy="no", use_cpu=device == "cpu",
        bf16=False, fp16=False, seed=0, disable_dropout=True, dataloader_num_workers=0, mask_truncated_completions=False,
    )
    trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=config, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer)
    trainer.create_optimizer_and_scheduler(num_training_steps=10**6)
    trainer.current_gradient_accumulation_steps = accumulation  # what transformers' training loop sets
    batches = iter(trainer.get_train_dataloader())

    def step() -> None:
        trainer.model.train()
        generation_batch = next(batches)  # P x G rows: the first call generates, the rest read its buffer
        for _ in range(accumulation):
            trainer.training_step(trainer.model, generation_batch, None)
        trainer.accelerator.clip_grad_norm_(trainer.model.parameters(), config.max_grad_norm)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        trainer.model.zero_grad(set_to_none=True)
        trainer.state.global_step += 1

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=None, help="16 (tiny), 128 (smollm2)")
    parser.add_argument("--model", default="tiny", choices=["tiny", "smollm2"],
                        help="tiny: random Qwen2-style with the character tokenizer; smollm2: SmolLM2-135M-Instruct")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per constraint")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--constraints", nargs="+", default=["uniform", "dual_token"])
    parser.add_argument("--trl", action="store_true", help="alternate with TRL's GRPOTrainer")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--sampler", default="lean", choices=["lean", "generate"], help="Archer's rollout engine: LeanRolloutEngine or HFRolloutEngine (generate)")
    parser.add_argument("--no-share", action="store_true", help="run every row's prompt (no prompt sharing)")
    parser.add_argument("--micro-batch", type=int, default=None,
                        help="rows per backward pass, both frameworks (default: all P x G rows for tiny, 16 for smollm2: "
                             "64 rows at once in both frameworks was killed on a 24 GiB machine, its memory peak at 23.3 GiB)")
    args = parser.parse_args()
    if args.new_tokens is None:
        args.new_tokens = 16 if args.model == "tiny" else 128
    if args.micro_batch is None:
        args.micro_batch = args.prompts * args.samples if args.model == "tiny" else 16
    if (args.prompts * args.samples) % args.micro_batch:
        parser.error(f"--micro-batch {args.micro_batch} must divide prompts x samples = {args.prompts * args.samples}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    work = Workload(args)
    other = build_trl(work, args, device) if args.trl else None

    results = {}
    for name in args.constraints:
        timing = run_archer(name, work, args, device, other)
        keep = slice(args.warmup, None)
        archer_steps, phases = timing.archer[keep], timing.phases[keep]
        row = {"archer_step_s": statistics.median(archer_steps)}
        for key in sorted({k for p in phases for k in p}):
            values = [p[key] for p in phases if key in p]
            row[key] = statistics.median(values)
        if timing.others:
            row["trl_step_s"] = statistics.median(timing.others[keep])
            row["ratio"] = row["archer_step_s"] / row["trl_step_s"]
        results[name] = row

    first = args.constraints[0]
    shape = (f"{args.model}: {args.prompts} prompts x {args.samples} samples, {args.new_tokens} new tokens, "
             f"micro-batch {args.micro_batch}, {device}")
    print(f"\n== {shape}, {args.steps} timed steps (median)")
    for name, row in results.items():
        line = f"{name:11s} archer {row['archer_step_s']:.3f} s/step"
        if "trl_step_s" in row:
            line += f" | TRL {row['trl_step_s']:.3f} s/step | archer/TRL {row['ratio']:.2f}"
        if name != first:
            line += f" | vs {first}: {row['archer_step_s'] / results[first]['archer_step_s']:.3f}x"
        print(line)
        phase_text = ", ".join(f"{k[5:]} {row[k]:.3f}" for k in row if k.startswith("time/"))
        print(f"            phases (s): {phase_text}")
        print(f"            tokens/s {row.get('perf/tokens_per_second', float('nan')):.0f}, update peak memory "
              f"{row.get('memory/update_peak_mb', float('nan')):.1f} MiB")
    if args.json:
        out = {"shape": shape, **{f"{first}_{k}": v for k, v in results[first].items()}}
        out.update(archer_step_s=results[first]["archer_step_s"], trl_step_s=results[first].get("trl_step_s"),
                   ratio=results[first].get("ratio"), phases={k: v for k, v in results[first].items() if k.startswith("time/")},
                   update_peak_mb=results[first].get("memory/update_peak_mb"))
        for name in args.constraints[1:]:
            out[f"{name}_vs_{first}"] = results[name]["archer_step_s"] / results[first]["archer_step_s"]
            out[f"{name}_ratio"] = results[name].get("ratio")
        print(json.dumps(out))


if __name__ == "__main__":
    main()
