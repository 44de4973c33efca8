#!/bin/sh
# gpu-check.sh - the prepared run for a lent GPU machine (issue 5), in under 8 minutes:
#   1. builds with CUDA=1 (and OpenCL when its packages are there);
#   2. runs the conformance suite, every op of CUDA (and OpenCL) against the cpu backend
#      plus 20 training steps (build/tests/check_backend);
#   3. prints training tokens/s on random tokens, fp32 and with TF32 GEMMs, for GPT-2
#      124M (vocab 50257, 12 layers, 12 heads, 768 channels, B=8, T=1024) and for the
#      6-layer char model (vocab 65, 6 layers, 6 heads, 384 channels, B=64, T=256), with
#      a per-op breakdown of the fp32 runs; and the cpu backend on the char model;
#   4. the same two models with bf16 mixed precision (--backend cuda+bf16: fp32 master
#      weights, bf16 GEMM operands, fp32 accumulation): tokens/s beside fp32's and the
#      difference of the last bench loss (same weights, same tokens, same steps);
#   5. a short real training run (char model, 4 layers, 128 channels, 300 steps on the
#      repository's own docs as text) in fp32 and in bf16: tokens/s of each and the
#      val-loss difference at every eval.
# The machine may be offline: missing Debian packages are reported, not installed, and
# what needs them is skipped. With $OUT set (the device tool) the log is copied there.
# Usage: sh scripts/gpu-check.sh
set -u
cd "$(dirname "$0")/.."
J=$(nproc 2>/dev/null || echo 4)
T0=$(date +%s)
LOG=${OUT:-/tmp}/gpu-check.log
step() { echo; echo "=== $* (t=$(( $(date +%s) - T0 )) s)"; }
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# compare LABEL FP32_LOG BF16_LOG: tokens/s and last loss of two bench runs
compare() {
    a=$(sed -n 's/.*(last loss \([0-9.]*\)).*/\1/p' "$2" 2>/dev/null | head -n 1)
    b=$(sed -n 's/.*(last loss \([0-9.]*\)).*/\1/p' "$3" 2>/dev/null | head -n 1)
    ta=$(sed -n 's/.* \([0-9][0-9]*\) tokens\/s.*/\1/p' "$2" 2>/dev/null | head -n 1)
    tb=$(sed -n 's/.* \([0-9][0-9]*\) tokens\/s.*/\1/p' "$3" 2>/dev/null | head -n 1)
    awk -v l="$1" -v a="$a" -v b="$b" -v ta="$ta" -v tb="$tb" 'BEGIN {
        if (a == "" || b == "" || ta == "" || tb == "") { print l ": no figures (a run failed)"; exit }
        d = b - a
        printf "%s: fp32 %d tok/s, bf16 %d tok/s (x%.2f); last loss fp32 %s, bf16 %s: %+.5f (%.2e relative)\n",
               l, ta, tb, tb / ta, a, b, d, (d < 0 ? -d : d) / a }'
}

main() {
    step "machine"
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>&1 ||
        echo "nvidia-smi: not found"
    NVCC=$(ls /usr/local/cuda/bin/nvcc 2>/dev/null || command -v nvcc || true)
    if [ -z "$NVCC" ]; then echo "no nvcc: the CUDA driver cannot be built"; return 1; fi
    "$NVCC" --version | tail -n 2
    echo "cores: $J"

    step "packages"
    TESTS=1; OPENCL=1
    for p in check libsubunit-dev pkg-config; do have $p || { echo "missing $p: no conformance suite"; TESTS=0; }; done
    for p in ocl-icd-opencl-dev opencl-c-headers libclblast-dev; do have $p || { echo "missing $p: OPENCL=0"; OPENCL=0; }; done
    # make would try to install what is missing; offline that fails, so tell it not to
    mkdir -p build && touch build/.deps-ok

    step "build (CUDA=1 OPENCL=$OPENCL)"
    targets="build/edgetrain"
    [ $TESTS = 1 ] && targets="$targets build/tests/check_backend"
    if ! make -j"$J" CUDA=1 OPENCL=$OPENCL $targets >build/gpu-check-build.log 2>&1; then
        tail -n 30 build/gpu-check-build.log
        echo "build failed"
        return 1
    fi
    echo "built: $targets"
    build/edgetrain devices

    if [ $TESTS = 1 ]; then
        step "conformance suite: check_backend (cuda vs cpu)"
        timeout 150 build/tests/check_backend || echo "check_backend FAILED (exit $?)"
    fi

    B124="--vocab 50257 --layers 12 --heads 12 --channels 768 --context 1024 -b 8 -t 1024"
    CHAR="--vocab 65 --layers 6 --heads 6 --channels 384 --context 256 -b 64 -t 256"
    step "GPT-2 124M, B=8 T=1024, fp32"
    timeout 150 build/edgetrain devices --bench --backend cuda $B124 --warmup 2 --steps 10 --profile |
        tee build/gc-124-fp32.log
    step "GPT-2 124M, B=8 T=1024, TF32 GEMMs"
    ET_CUDA_TF32=1 timeout 90 build/edgetrain devices --bench --backend cuda $B124 --warmup 2 --steps 10
    step "6-layer char model, B=64 T=256, fp32"
    timeout 90 build/edgetrain devices --bench --backend cuda $CHAR --warmup 2 --steps 20 --profile |
        tee build/gc-char-fp32.log
    step "6-layer char model, B=64 T=256, TF32 GEMMs"
    ET_CUDA_TF32=1 timeout 60 build/edgetrain devices --bench --backend cuda $CHAR --warmup 2 --steps 20
    step "6-layer char model, B=64 T=256, cpu backend ($J threads) for comparison"
    timeout 60 build/edgetrain devices --bench --backend cpu $CHAR --warmup 1 --steps 2 --threads "$J"

    step "GPT-2 124M, B=8 T=1024, bf16 mixed precision"
    timeout 120 build/edgetrain devices --bench --backend cuda+bf16 $B124 --warmup 2 --steps 10 --profile |
        tee build/gc-124-bf16.log
    step "6-layer char model, B=64 T=256, bf16 mixed precision"
    timeout 60 build/edgetrain devices --bench --backend cuda+bf16 $CHAR --warmup 2 --steps 20 |
        tee build/gc-char-bf16.log
    step "bf16 against fp32 (bench: same weights, tokens and steps)"
    compare "GPT-2 124M" build/gc-124-fp32.log build/gc-124-bf16.log
    compare "6-layer char" build/gc-char-fp32.log build/gc-char-bf16.log

    step "short training run, fp32 and bf16 (char model on the repository's docs)"
    cat README.md docs/*.md >build/gc-text.txt
    build/edgetrain prepare --input build/gc-text.txt --tokenizer char --out build/gc-data >/dev/null &&
    for p in fp32 bf16; do
        rm -rf build/gc-train-$p
        timeout 90 build/edgetrain train --data build/gc-data/train.bin --val-data build/gc-data/val.bin \
            --layers 4 --heads 4 --channels 128 --context 64 -b 32 -t 64 --steps 300 --lr 1e-3 \
            --lr-min 1e-4 --warmup 20 --eval-every 50 --eval-batches 10 --log-every 100 --seed 1337 \
            --backend cuda --precision $p --out build/gc-train-$p | grep -v '^wrote'
    done
    if [ -f build/gc-train-fp32/log.csv ] && [ -f build/gc-train-bf16/log.csv ]; then
        paste -d, build/gc-train-fp32/log.csv build/gc-train-bf16/log.csv | awk -F, 'NR > 1 && $3 > 0 {
            d = $8 - $3; r = (d < 0 ? -d : d) / $3; if (r > m) m = r
            printf "  step %3d  val loss fp32 %.6f  bf16 %.6f  difference %+.6f (%.1e relative)\n", $1, $3, $8, d, r }
            END { printf "  largest relative val-loss difference bf16 vs fp32: %.2e\n", m }'
    else
        echo "  a training run failed: no comparison"
    fi
    step "done"
}

main 2>&1 | tee "$LOG"
