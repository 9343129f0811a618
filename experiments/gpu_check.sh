#!/usr/bin/env bash
# GPU check (under 5 minutes on one H100/H200): the GPU-marked tests, then the embedded
# default end to end on CUDA with the HF rollout engine (and with vLLM when it is installed),
# printing step times.
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
python3 -m pytest -q -p no:cacheprovider -p no:warnings -m gpu tests/integration/test_gpu.py tests/unit/test_vllm_engine.py 2>&1 | grep -E "passed|failed|error|skipped"

run_default() {  # $1: name, then overrides
  local name=$1; shift
  echo "== default run on CUDA ($name)"
  local start=$(date +%s)
  python3 -m archer.train trainer=gpu trainer.precision=32-true logger=csv hydra.run.dir="$OUT/$name" "$@" 2>&1 | grep "\[archer\]"
  echo "wall seconds: $(( $(date +%s) - start ))"
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
if python3 -c "import vllm" 2>/dev/null; then
  run_default vllm rollout=vllm rollout.dtype=float32 rollout.gpu_memory_utilization=0.3
else
  echo "== vLLM not installed: skipping the vLLM run (pip install 'archer-rlvr[vllm]')"
fi
