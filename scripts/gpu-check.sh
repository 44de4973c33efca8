#!/bin/sh
# gpu-check.sh - the prepared run for a lent GPU machine (issue 5), in under 8 minutes:
#   1. builds with CUDA=1 (and OpenCL when its packages are there);
#   2. runs the conformance suite, every op of CUDA (and OpenCL) against the cpu backend
#      plus 20 training steps (build/tests/check_backend);
#   3. prints training tokens/s on random tokens, fp32 and with TF32 GEMMs, for GPT-2
#      124M (vocab 50257, 12 layers, 12 heads, 768 channels, B=8, T=1024) and for the
#      6-layer char model (vocab 65, 6 layers, 6 heads, 384 channels, B=64, T=256), with
#      a per-op breakdown of the fp32 runs; and the cpu backend on the char model.
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
    timeout 150 build/edgetrain devices --bench --backend cuda $B124 --warmup 2 --steps 10 --profile
    step "GPT-2 124M, B=8 T=1024, TF32 GEMMs"
    ET_CUDA_TF32=1 timeout 90 build/edgetrain devices --bench --backend cuda $B124 --warmup 2 --steps 10
    step "6-layer char model, B=64 T=256, fp32"
    timeout 90 build/edgetrain devices --bench --backend cuda $CHAR --warmup 2 --steps 20 --profile
    step "6-layer char model, B=64 T=256, TF32 GEMMs"
    ET_CUDA_TF32=1 timeout 60 build/edgetrain devices --bench --backend cuda $CHAR --warmup 2 --steps 20
    step "6-layer char model, B=64 T=256, cpu backend ($J threads) for comparison"
    timeout 60 build/edgetrain devices --bench --backend cpu $CHAR --warmup 1 --steps 2 --threads "$J"
    step "done"
}

main 2>&1 | tee "$LOG"
