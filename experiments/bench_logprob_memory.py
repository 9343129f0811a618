"""Peak memory and time of the chunked log-prob + entropy op against the full-softmax one.

Each measurement runs in a fresh subprocess: the logits are allocated first, the process's
peak RSS is read, the op runs, and the peak is read again; the difference is the op's
extra peak memory, reported as a share of the logits tensor's own size.

    python experiments/bench_logprob_memory.py                 # vocab 151,936 x 2,048 tokens
    python experiments/bench_logprob_memory.py --tokens 4096 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure(method: str, tokens: int, vocab: int, dtype: str, chunk_rows: int, backward: bool) -> dict:
    import torch

    from archer import ops

    torch.manual_seed(0)
    logits = torch.randn(tokens, vocab, dtype=getattr(torch, dtype))
    targets = torch.randint(0, vocab, (tokens,))
    if backward:
        logits.requires_grad_(True)
    logits_bytes = logits.numel() * logits.element_size()
    base = _peak_bytes()
    start = time.perf_counter()
    if method == "chunked":
        logprobs, entropy = ops.token_logprobs_and_entropy(logits, targets, 1.0, chunk_rows=chunk_rows or None)
    else:
        logprobs, entropy = ops.naive_logprobs_and_entropy(logits, targets, 1.0)
    if backward:
        logprobs.sum().backward()
    seconds = time.perf_counter() - start
    extra = _peak_bytes() - base
    return {"method": method, "backward": backward, "seconds": round(seconds, 3),
            "extra_peak_MiB": round(extra / 2**20, 1), "logits_MiB": round(logits_bytes / 2**20, 1),
            "extra_over_logits": round(extra / logits_bytes, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--vocab", type=int, default=151_936)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--chunk-rows", type=int, default=0, help="0: the op's default (CHUNK_BYTES)")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "BACKWARD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, backward = args.child
        print(json.dumps(measure(method, args.tokens, args.vocab, args.dtype, args.chunk_rows, backward == "1")))
        return
    print(f"logits [{args.tokens}, {args.vocab}] {args.dtype}, chunk_rows={args.chunk_rows or 'default'}")
    print(f"{'method':8} {'pass':17} {'seconds':>8} {'extra peak MiB':>15} {'x logits':>9}")
    for backward in ("0", "1"):
        for method in ("naive", "chunked"):
            cmd = [sys.executable, __file__, "--tokens", str(args.tokens), "--vocab", str(args.vocab),
                   "--dtype", args.dtype, "--chunk-rows", str(args.chunk_rows), "--child", method, backward]
            row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            label = "forward+backward" if row["backward"] else "forward"
            print(f"{row['method']:8} {label:17} {row['seconds']:8.2f} {row['extra_peak_MiB']:15.1f} {row['extra_over_logits']:9.3f}")


if __name__ == "__main__":
    main()
