#!/usr/bin/env bash
# The ablation sweep of docs/paper.md on the CPU default task: 12 strategies x 3 seeds,
# every run on the same budget (the default: 60 RL steps x 32 prompts x 8 samples, 32 new
# tokens, the same warm-up per seed, shared through model.warmup_cache).
#
#   bash experiments/sweeps/ablations.sh [OUT_DIR] [PARALLEL]
#
# OUT_DIR (default sweeps/ablations) receives one folder per run; PARALLEL (default 1) runs that
# many Hydra multiruns side by side, each on CPU_COUNT / PARALLEL threads. Then:
#   archer-summarize OUT_DIR --out experiments/results/ablations
set -euo pipefail
OUT=${1:-sweeps/ablations}
PARALLEL=${2:-1}
# the last three are the entropy-mechanism baselines (Cui et al. 2025), added after the committed report's 9
STRATEGIES=(archer grpo dapo entropy_mask lopti archer_no_knowledge_kl archer_swapped archer_batch_quantile archer_random_split
            clip_cov kl_cov entropy_bonus)
SEEDS=0,1,2
THREADS=$(( $(nproc) / PARALLEL )); THREADS=$(( THREADS > 0 ? THREADS : 1 ))
mkdir -p "$OUT"
git rev-parse HEAD > "$OUT/commit.txt" 2>/dev/null || true

pids=()
for ((part = 0; part < PARALLEL; part++)); do
  mine=()
  for ((i = part; i < ${#STRATEGIES[@]}; i += PARALLEL)); do mine+=("${STRATEGIES[$i]}"); done
  list=$(IFS=,; echo "${mine[*]}")
  OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS archer-train -m "ablation=$list" "seed=$SEEDS" \
    model.warmup_cache="$OUT/warmup_cache" checkpoint.every_n_steps=0 export=false \
    "hydra.sweep.dir=$OUT/part$part" \
    > "$OUT/sweep_part$part.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
echo "[archer] sweep done: $OUT; summarize with: archer-summarize $OUT --out experiments/results/ablations"
