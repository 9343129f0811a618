"""Peak memory of one policy update on long responses: activation checkpointing and token budgets.

The model has SmolLM2-135M's shape (Llama: hidden 576, 30 layers, 9 heads, 3 key/value heads,
MLP 1536, vocabulary 49,152, tied embeddings), randomly initialised; memory depends on the
shape, not on the weights. One update is what `archer.update.PolicyUpdate` does for a
mini-batch: for each micro-batch, `archer.forward.response_logprobs` (chunked log-prob and
entropy op), Archer's dual-token loss with global denominators, and a backward pass into
accumulated float32 gradients.

Each configuration runs in a fresh subprocess. The model is built and one tiny update
allocates its gradients first; the process's peak RSS is read, the measured update runs, and
the peak is read again. The difference, "update peak", is the memory one update adds on top
of the resident model and its gradients: activations, logits and their gradients. The
process's whole peak is printed too.

    python experiments/bench_memory.py            # a table
    python experiments/bench_memory.py --json     # the table, then one JSON line

Goals (issue 15): checkpointing cuts the update peak at 2K response tokens by >= 40%
(`checkpointing_saving_2k`); a mixed-length batch under a token budget peaks within 20% of
one full micro-batch of that budget (`budget_overshoot`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

PROMPT_TOKENS = 128
SEQUENCES = 2  # per micro-batch in the checkpointing comparison
# the mixed-length batch: 8 responses from 2K down to 128 tokens
MIXED_LENGTHS = [2048, 1536, 1024, 768, 512, 384, 256, 128]
BUDGET_TOKENS = SEQUENCES * (2048 + PROMPT_TOKENS)  # room for two of the longest rows
FIXED_CONTRAST = 4  # rows a micro-batch without a budget


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


# Model shapes (random weights: memory depends on the shape alone).
SHAPES = {
    # SmolLM2-135M-Instruct
    "smollm2": dict(model="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rms_norm_eps=1e-5),
    # DeepSeek-R1-Distill-Qwen-1.5B, the paper's policy (Qwen2 architecture)
    "r1_distill_1_5b": dict(model="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                            num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                            tie_word_embeddings=False, rms_norm_eps=1e-6),
}


def shaped_model(checkpointing: bool, shape: str = "smollm2"):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from archer.forward import enable_activation_checkpointing

    torch.manual_seed(0)
    settings = dict(SHAPES[shape])
    kind = settings.pop("model")
    config_class, model_class = (LlamaConfig, LlamaForCausalLM) if kind == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    model = model_class(config_class(max_position_embeddings=8192, **settings))
    model.train()
    if checkpointing:
        enable_activation_checkpointing(model)
    return model


def rollout_rows(lengths: list[int], vocab: int, seed: int = 0):
    """A rollout of one prompt per row (left-padded) and right-padded responses of `lengths`."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n, width = len(lengths), max(lengths)
    prompts = torch.randint(3, vocab, (n, PROMPT_TOKENS), generator=g)
    prompt_mask = torch.ones(n, PROMPT_TOKENS, dtype=torch.bool)
    responses = torch.randint(3, vocab, (n, width), generator=g)
    response_mask = torch.arange(width)[None] < torch.tensor(lengths)[:, None]
    return prompts, prompt_mask, responses, response_mask


def dual_token_loss():
    from archer.constraints import DualTokenConstraint, TokenClassConstraint

    return DualTokenConstraint(TokenClassConstraint(0.5, 0.5, 0.0), TokenClassConstraint(0.2, 0.2, 0.001),
                               aggregation="seq_mean_token_mean")


def run_update(model, lengths: list[int], budget: int | None, sequences: int) -> int:
    """One update over rows of `lengths`: micro-batches of `sequences` rows, or packed under
    `budget` tokens; returns the number of micro-batches."""
    import torch

    from archer.forward import response_logprobs
    from archer.packing import fixed_micro_batches, row_tokens, token_budget_micro_batches
    from archer.types import PolicyBatch

    prompts, prompt_mask, responses, response_mask = rollout_rows(lengths, model.config.vocab_size)
    rows = torch.arange(len(lengths))
    if budget:
        micro = token_budget_micro_batches(rows, row_tokens(prompt_mask, response_mask), budget)
    else:
        micro = fixed_micro_batches(rows, sequences)
    constraint = dual_token_loss()
    num_tokens = response_mask.sum().float()
    num_sequences = torch.tensor(float(len(lengths)))
    g = torch.Generator().manual_seed(1)
    for m in micro:
        logprobs, entropy = response_logprobs(model, prompts[m], prompt_mask[m], responses[m], response_mask[m])
        mask = response_mask[m]
        old = logprobs.detach() + 0.01 * torch.randn(logprobs.shape, generator=g) * mask
        ref = logprobs.detach() + 0.01 * torch.randn(logprobs.shape, generator=g) * mask
        advantages = torch.randn(len(m), generator=g)
        classes = (entropy.detach() > entropy.detach().quantile(0.8)) & mask
        batch = PolicyBatch(logprobs, old, ref, advantages, mask, classes, num_tokens, num_sequences, entropy)
        constraint(batch).loss.backward()
    return len(micro)


def measure(lengths: list[int], checkpointing: bool, budget: int | None, sequences: int, shape: str = "smollm2") -> dict:
    model = shaped_model(checkpointing, shape)
    run_update(model, [8], None, 1)  # allocate the gradients (resident in every configuration)
    base = _peak_bytes()
    start = time.perf_counter()
    micro = run_update(model, lengths, budget, sequences)
    seconds = time.perf_counter() - start
    peak = _peak_bytes()
    return {"update_peak_MiB": round((peak - base) / 2**20, 1), "process_peak_MiB": round(peak / 2**20, 1),
            "resident_MiB": round(base / 2**20, 1), "seconds": round(seconds, 1), "micro_batches": micro}


def child(spec: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return spec | json.loads(out)


def per_token(shape: str, lengths: list[int], as_json: bool) -> None:
    """Update peak of one sequence at two response lengths; the slope is the cost of a token."""
    short, long = lengths[0], lengths[-1]
    print(f"{shape}-shaped model, float32, one sequence, prompt {PROMPT_TOKENS} tokens, responses {short} and {long}")
    figures = {"shape": shape, "dtype": "float32", "lengths": [short, long], "rows": []}
    for checkpointing in (False, True):
        peaks = []
        for length in (short, long):
            r = child({"lengths": [length], "checkpointing": checkpointing, "sequences": 1, "shape": shape})
            figures["rows"].append(r)
            peaks.append(r["update_peak_MiB"])
            print(f"  checkpointing {'on ' if checkpointing else 'off'} {length:6d} tokens: update peak "
                  f"{r['update_peak_MiB']:9.1f} MiB, resident {r['resident_MiB']:8.1f} MiB, {r['seconds']:6.1f} s",
                  flush=True)
        slope = (peaks[1] - peaks[0]) / (long - short)
        key = "checkpointing" if checkpointing else "no_checkpointing"
        figures[f"MiB_per_token_{key}"] = round(slope, 4)
        print(f"  => {slope * 1024:.1f} KiB per response token, checkpointing {'on' if checkpointing else 'off'}")
    if as_json:
        print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument("--lengths", default="1024,2048,4096", help="response tokens of the checkpointing rows")
    parser.add_argument("--per-token", choices=sorted(SHAPES),
                        help="instead: the update's memory per response token of one sequence of this shape, "
                             "checkpointing off and on, from the update peaks at two --lengths")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(measure(spec["lengths"], spec["checkpointing"], spec.get("budget"), spec["sequences"],
                                 spec.get("shape", "smollm2"))))
        return

    import torch

    if args.per_token:
        per_token(args.per_token, [int(x) for x in args.lengths.split(",")], args.json)
        return
    print(f"SmolLM2-135M-shaped Llama, float32, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"prompt {PROMPT_TOKENS} tokens; update peak = peak RSS of one update above the resident model and gradients")
    print(f"{'configuration':44} {'update peak MiB':>16} {'process peak MiB':>17} {'seconds':>8}")
    rows = {}

    def show(name: str, spec: dict) -> None:
        rows[name] = child(spec)
        r = rows[name]
        print(f"{name:44} {r['update_peak_MiB']:16.1f} {r['process_peak_MiB']:17.1f} {r['seconds']:8.1f}", flush=True)

    for length in [int(x) for x in args.lengths.split(",")]:
        for checkpointing in (False, True):
            show(f"{SEQUENCES} x {length} tokens, checkpointing {'on' if checkpointing else 'off'}",
                 {"lengths": [length] * SEQUENCES, "checkpointing": checkpointing, "sequences": SEQUENCES})
    show(f"full micro-batch of the budget ({BUDGET_TOKENS} tokens)",
         {"lengths": [2048] * SEQUENCES, "checkpointing": False, "sequences": SEQUENCES})
    show(f"mixed batch of {len(MIXED_LENGTHS)}, budget {BUDGET_TOKENS} tokens",
         {"lengths": MIXED_LENGTHS, "checkpointing": False, "sequences": SEQUENCES, "budget": BUDGET_TOKENS})
    # the contrast: the same batch in fixed micro-batches of 4 rows (one micro-batch of all 8
    # would need ~28 GB and be killed on a 24 GB machine)
    show(f"mixed batch of {len(MIXED_LENGTHS)}, {FIXED_CONTRAST} rows a micro-batch (no budget)",
         {"lengths": MIXED_LENGTHS, "checkpointing": False, "sequences": FIXED_CONTRAST})

    def peak(name: str) -> float:
        return rows[name]["update_peak_MiB"]

    figures = {"model": "SmolLM2-135M-shaped Llama (random init), float32, CPU", "prompt_tokens": PROMPT_TOKENS,
               "sequences": SEQUENCES, "budget_tokens": BUDGET_TOKENS, "mixed_lengths": MIXED_LENGTHS,
               "rows": list(rows.values())}
    if "2048" in args.lengths.split(","):
        off, on = (peak(f"{SEQUENCES} x 2048 tokens, checkpointing {s}") for s in ("off", "on"))
        figures["checkpointing_saving_2k"] = round(1 - on / off, 3)
        # the same ratio over the whole process (resident model, gradients and libraries included)
        off_total, on_total = (rows[f"{SEQUENCES} x 2048 tokens, checkpointing {s}"]["process_peak_MiB"] for s in ("off", "on"))
        figures["checkpointing_saving_2k_process"] = round(1 - on_total / off_total, 3)
    full = f"full micro-batch of the budget ({BUDGET_TOKENS} tokens)"
    figures["budget_overshoot"] = round(peak(f"mixed batch of {len(MIXED_LENGTHS)}, budget {BUDGET_TOKENS} tokens") / peak(full) - 1, 3)
    figures["unbudgeted_overshoot"] = round(
        peak(f"mixed batch of {len(MIXED_LENGTHS)}, {FIXED_CONTRAST} rows a micro-batch (no budget)") / peak(full) - 1, 3)
    print(f"checkpointing saving at 2K: {figures.get('checkpointing_saving_2k')} (goal >= 0.40); "
          f"budget overshoot: {figures['budget_overshoot']} (goal <= 0.20); "
          f"the same mixed batch, {FIXED_CONTRAST} rows a micro-batch: {figures['unbudgeted_overshoot']:+.3f}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
