# boards/jetson.mk - NVIDIA Jetson Orin (aarch64 Linux, Cortex-A78AE, CUDA sm_87).
# Cross-compiled here with Debian's gcc-aarch64-linux-gnu; the test binaries run here
# under qemu-aarch64 (Debian qemu-user) against arm64 multiarch Check libraries, and the
# NEON kernels are what they exercise. On a Jetson itself, build natively with
#   make board=jetson BOARD_CC=gcc BOARD_RUN=
# (JetPack ships gcc and the CUDA toolkit; add CUDA=1 for the CUDA driver).
BOARD_CC      := aarch64-linux-gnu-gcc
BOARD_ARCH    := -march=armv8.2-a
BOARD_RUN     := qemu-aarch64 -L /usr/aarch64-linux-gnu
BOARD_PKGS    := gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
BOARD_MULTIARCH_PKGS := check:arm64 libsubunit-dev:arm64
BOARD_CHECK_LIBS := -lcheck -lsubunit -lrt -lm -pthread
BOARD_HOSTED  := 1
# check_cli drives the CLI binary through popen: under qemu-user every one of its dozens
# of training runs is emulated twice over and takes minutes; the CLI's behaviour is
# architecture-independent and covered by the host run. check_pool measures spinning
# threads, which qemu-user emulates at a crawl (minutes per case); check_systolic_model
# simulates whole models and did not finish in 10 minutes under qemu. Run all three natively.
BOARD_TEST_SKIP := check_cli check_pool check_systolic_model
BOARD_RAM     := 34359738368   # 32 GiB (Orin AGX 32GB): shared CPU/GPU memory
BOARD_FLASH   := 0
OPENCL        := 0
CUDA          := 0
