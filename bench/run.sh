#!/bin/sh
# bench/run.sh - make bench: edgetrain beside OpenBLAS and PyTorch, and its int8 inference
# beside its fp32 inference, in one run on this machine. Writes bench/out/results.txt (raw lines), results.json, report.md, chart.svg.
# Figures drift with the machine's clock and load: compare ratios within one run only.
set -e
B=${BUILD:-build}
out=bench/out
mkdir -p "$out"
raw="$out/results.txt"
: > "$raw"
steps_baby=30; steps_small=10; steps_medium=6
echo "bench: FMA peak" >&2
for t in 1 2; do "$B/bench/bench_peak" $t >> "$raw"; done
echo "bench: GEMM, edgetrain vs OpenBLAS (training shapes, NT/NN/TN, 1 and 2 threads)" >&2
"$B/bench/bench_gemm" 2 >> "$raw"
echo "bench: training steps, edgetrain vs PyTorch" >&2
for cfg in "baby 4 4 128 64 12 $steps_baby" "small 4 4 128 256 8 $steps_small" "medium 6 6 384 256 4 $steps_medium"; do
    set -- $cfg
    for t in 1 2; do
        "$B/bench/bench_train" $1 $2 $3 $4 $5 $6 $t $7 >> "$raw"
        tail -n 1 "$raw" | sed 's/^/  /' >&2
    done
    # PyTorch's GEMMs run in OpenBLAS's own threads: try both counts of each
    for t in 1 2; do
        for ob in 1 2; do
            OPENBLAS_NUM_THREADS=$ob OMP_NUM_THREADS=$t /usr/bin/python3 bench/bench_torch.py $1 $2 $3 $4 $5 $6 $t $7 "t${t}b${ob}" >> "$raw"
            tail -n 1 "$raw" | sed 's/^/  /' >&2
        done
    done
done
echo "bench: inference, fp32 vs int8 (baby GPT, eval B=8 T=64 and sampling B=1 T=64)" >&2
for t in 1 2; do
    "$B/bench/bench_infer" $t >> "$raw"
    grep "^infer .* $t [0-9.]* [0-9.]*$" "$raw" | tail -n 8 | sed 's/^/  /' >&2
done
/usr/bin/python3 bench/report.py "$raw" "$out"
