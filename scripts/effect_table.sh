#!/usr/bin/env bash
# Runs the toy protocol for each trust row and seed; prints one line per run (used for the table).
set -u
for seed in ${SEEDS:-0 1 2}; do
  for trust in NeuralTrustFunction Naive Random GroundTruth; do
    start=$(date +%s)
    python main.py fit --config configs/toy.yaml --trust "$trust" --seed_everything "$seed" \
      --trainer.logger.init_args.name "effect/$trust/seed$seed" --trainer.enable_progress_bar false > /dev/null 2>&1
    echo "$seed $trust $(( $(date +%s) - start ))s $(cat runs/effect/$trust/seed$seed/version_*/results.json | python -c '
import json,sys; r=json.load(sys.stdin)
print(r["teacher"]["accuracy"]["target"], r["trust"]["auc"], r["trust"]["purity"], r["selection"]["n"], r["student"]["accuracy"]["base"], r["student"]["accuracy"]["final"])')"
  done
done
