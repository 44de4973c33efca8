# accel/systolic/build.mk - the systolic-array simulator (issue 6), always built.
#   make sim-test   its Check suites (GEMMs, cycle model, model-level loss / training
#                   step / int8 inference on the systolic backend), the CLI through
#                   them, and the freestanding check of the array model
#   make sim-bench  the AlexNet-conv1 GEMM (3025x363x96) on a 32x32 WS array: wall
#                   time and simulated MACs/s (part of make bench)
SYS_DIR      := accel/systolic
# the array model: freestanding C99 (no allocation, no libc but memcpy/memset)
SYS_CORE_SRC := $(SYS_DIR)/sys_timing.c $(SYS_DIR)/sys_array.c $(SYS_DIR)/sys_cycle.c
SYS_HOST_SRC := $(SYS_DIR)/sys_backend.c $(SYS_DIR)/sys_report.c
ACCEL_SRC     += $(SYS_CORE_SRC) $(SYS_HOST_SRC)
ACCEL_INCS    += -I$(SYS_DIR)
ACCEL_HEADERS += $(SYS_DIR)/et_systolic.h $(SYS_DIR)/et_sys_backend.h $(SYS_DIR)/et_sys_report.h
SYS_TESTS     := $(BUILD)/tests/check_systolic $(BUILD)/tests/check_systolic_model

.PHONY: sim-test sim-bench sim-freestanding-check
sim-test: $(SYS_TESTS) $(BUILD)/edgetrain sim-freestanding-check
	@sh scripts/run-tests.sh sim $(BUILD)/edgetrain $(SYS_TESTS)

sim-freestanding-check:
	@rm -rf $(BUILD)/fs-sys && mkdir -p $(BUILD)/fs-sys
	@for f in $(SYS_CORE_SRC); do \
	    $(CC) $(STD) -pedantic -ffreestanding -nostdlib -fno-math-errno -O2 -Icore -I$(SYS_DIR) -c $$f \
	        -o $(BUILD)/fs-sys/$$(basename $$f .c).o || exit 1; done
	@ld -r -o $(BUILD)/fs-sys/all.o $(BUILD)/fs-sys/sys_*.o
	@out=$$(sh scripts/freestanding-check.sh $(BUILD)/fs-sys/all.o) || exit 1; \
	    echo "$$out" | sed 's|core/ + compress/ need|the systolic array model needs|'

sim-bench: $(BUILD)/edgetrain
	@out=$$($(BUILD)/edgetrain sim --gemm 3025x363x96 --array 32x32 --dataflow ws --threads 1) || exit 1; \
	    echo "$$out" | grep -E '^(gemm|simulator|cycles)'

test: sim-freestanding-check
bench: sim-bench
