#!/usr/bin/env bash
# The testbed's confirmatory sweep (experiments/results/testbed/PREREGISTRATION.md, docs/testbed.md):
# 7 strategies x 5 seeds of `archer-train experiment=testbed`, the same budget for every run, one
# supervised warm-up per seed shared through model.warmup_cache.
#
#   bash experiments/sweeps/testbed.sh [OUT_DIR] [PARALLEL]
#
# OUT_DIR (default sweeps/testbed) receives one folder per run (<strategy>_seed<S>, with its log
# next to it); PARALLEL (default 1) runs that many at a time, each on CPU_COUNT / PARALLEL threads.
# A run whose summary.json exists is skipped, so an interrupted sweep resumes where it stopped.
# Then:
#   archer-summarize OUT_DIR --out experiments/results/testbed --paired-against grpo archer
set -uo pipefail
OUT=${1:-sweeps/testbed}
PARALLEL=${2:-1}
STRATEGIES=(grpo dapo archer entropy_mask lopti archer_no_knowledge_kl archer_swapped)
SEEDS=(0 1 2 3 4)
THREADS=$(( $(nproc) / PARALLEL )); THREADS=$(( THREADS > 0 ? THREADS : 1 ))
mkdir -p "$OUT"
git rev-parse HEAD > "$OUT/commit.txt" 2>/dev/null || true
export OUT THREADS

run_one() {
  local strategy=$1 seed=$2 dir="$OUT/$1_seed$2"
  [ -f "$dir/summary.json" ] && return 0
  local start=$SECONDS
  if OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS archer-train experiment=testbed "ablation=$strategy" "seed=$seed" \
       monitor.enabled=true logger=csv model.warmup_cache="$OUT/warmup_cache" "hydra.run.dir=$dir" > "$dir.log" 2>&1; then
    echo "[testbed] $strategy seed $seed: $(( SECONDS - start )) s"
  else
    echo "[testbed] $strategy seed $seed FAILED after $(( SECONDS - start )) s: see $dir.log"
  fi
}
export -f run_one

# The first strategy of every seed comes first: it warms that seed up and caches it. Jobs of one
# seed that overlap wait for the cache (archer-train locks it), so no seed is warmed up twice.
{
  for seed in "${SEEDS[@]}"; do echo "${STRATEGIES[0]} $seed"; done
  for seed in "${SEEDS[@]}"; do
    for strategy in "${STRATEGIES[@]:1}"; do echo "$strategy $seed"; done
  done
} | xargs -P "$PARALLEL" -L 1 bash -c 'run_one "$0" "$1"'

failed=$(for s in "${STRATEGIES[@]}"; do for d in "${SEEDS[@]}"; do [ -f "$OUT/${s}_seed$d/summary.json" ] || echo "${s}_seed$d"; done; done)
if [ -n "$failed" ]; then echo "[testbed] runs without a summary: $failed"; exit 1; fi
echo "[testbed] sweep done: $OUT; summarize with: archer-summarize $OUT --out experiments/results/testbed --paired-against grpo archer"
