# boards/tpusim.mk - this machine with the systolic-array simulator as its accelerator
# (docs/SYSTOLIC.md): `make board=tpusim test` builds for the host and runs the
# simulator-based test run, the model-level tests (loss, a training step, int8
# inference) on the "systolic" backend plus the array's own suites (make sim-test).
# Training and inference on it: edgetrain train|eval|sample --backend systolic[:RxC:df:dtype].
BOARD_CC      ?= gcc
BOARD_ARCH    ?= -march=native
BOARD_RUN     :=
BOARD_PKGS    :=
BOARD_MULTIARCH_PKGS :=
BOARD_CHECK_LIBS :=
BOARD_HOSTED  := 0          # its test is the simulator run below, not the whole host suite
BOARD_TEST    := sim-test
BOARD_TEST_SKIP :=
BOARD_RAM     := 0
BOARD_FLASH   := 0
OPENCL        := 0
CUDA          := 0
