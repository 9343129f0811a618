#!/usr/bin/env bash
# GPU check (under 6 minutes on one H100/H200): the GPU-marked tests, then the embedded
# default end to end on CUDA with the HF rollout engine, with bf16-mixed compute and bf16
# sampling over fp32 master weights, and with vLLM when it is installed, printing step times.
# Full logs stay in $OUT; a failure prints the end of its log (no filter hides a traceback).
#   bash experiments/gpu_check.sh            # from the repository root, archer installed
# Where hydra/omegaconf are missing, put their wheels in .whl/ first (see README).
set -uo pipefail
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/gpu_check}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, lightning; print('torch', torch.__version__, 'transformers', transformers.__version__, 'lightning', lightning.__version__)"
echo "== GPU tests"
python3 -m pytest -q -p no:cacheprovider -p no:warnings -m gpu tests/integration/test_gpu.py tests/unit/test_vllm_engine.py \
  > "$OUT/pytest.log" 2>&1; status=$?
tail -n 3 "$OUT/pytest.log"
[ $status -eq 0 ] || { echo "GPU tests failed (full log: $OUT/pytest.log)"; tail -n 60 "$OUT/pytest.log"; }

run_default() {  # $1: name, then overrides
  local name=$1; shift
  echo "== default run on CUDA ($name)"
  local start=$(date +%s)
  python3 -m archer.train trainer=gpu trainer.precision=32-true logger=csv hydra.run.dir="$OUT/$name" "$@" \
    > "$OUT/$name.log" 2>&1; local status=$?
  grep "\[archer\]" "$OUT/$name.log"
  echo "wall seconds: $(( $(date +%s) - start ))"
  if [ $status -ne 0 ]; then echo "FAILED (exit $status); the end of $OUT/$name.log:"; tail -n 40 "$OUT/$name.log"; return; fi
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
if python3 -c "import vllm" 2>/dev/null; then
  run_default vllm rollout=vllm rollout.dtype=float32 rollout.gpu_memory_utilization=0.3
else
  echo "== vLLM not installed: skipping the vLLM run (pip install 'archer-rlvr[vllm]')"
fi
