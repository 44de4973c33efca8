# boards/cortex-m7.mk - bare-metal Arm Cortex-M7 (FPv5 double-precision FPU, hard float;
# e.g. STM32H743: 2 MiB flash, 512 KiB AXI SRAM). No OS and no heap: core/ + compress/
# (which include the device-image loader and LoRA fine-tuning) are built with Debian's
# arm-none-eabi-gcc into a static library, and a tiny firmware (boards/cortex-m7/:
# start-up, vector table, linker script) links it with a device image compiled in as a
# const array, opens the image in place from flash and runs a fine-tuning step in a
# static 256 KiB arena. `make board=cortex-m7` builds both and prints arm-none-eabi-size.
# The image compiled in is FW_IMAGE (default: the committed fuzz seed, a 2-layer W8A32
# model); pass FW_IMAGE=model.etimg for your own (edgetrain export --format image).
# `make board=cortex-m7 m7-qemu` runs the firmware on QEMU's mps2-an500 (Cortex-M7) with
# semihosting output and fails unless high-water == plan and the loss went down.
# Budgets: before linking, `make board-check` (the top-level Makefile) runs the host's
# `edgetrain plan` on FW_IMAGE with the firmware's own choices (rank FW_RANK on every
# block, T = FW_T, an arena of FW_ARENA bytes) against BOARD_FLASH and BOARD_RAM and stops
# the build, saying what does not fit, if anything does not; after linking, the
# firmware's text + data must fit BOARD_FLASH and its data + bss BOARD_RAM (link.ld
# states the same two sizes, so the linker refuses an overflow as well).
BOARD_CC      := arm-none-eabi-gcc
BOARD_ARCH    := -mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard -mthumb
BOARD_RUN     :=
BOARD_PKGS    := gcc-arm-none-eabi
BOARD_MULTIARCH_PKGS :=
BOARD_CHECK_LIBS :=
BOARD_HOSTED  := 0
BOARD_RAM     := 524288     # 512 KiB
BOARD_FLASH   := 2097152    # 2 MiB
BOARD_GOAL    := m7         # what `make board=cortex-m7` builds (budget check, library, firmware)
BOARD_TEST    := m7 m7-qemu # what `make board=cortex-m7 test` should run
OPENCL        := 0
CUDA          := 0

M7_BUILD  := build/m7
FW_IMAGE  ?= tests/fuzz/corpus/seed_v65_m2_t0.etimg
FW_ARENA  ?= 262144         # the firmware's static arena (bytes)
FW_T      ?= 8              # tokens per fine-tuning sequence (at most the image's context)
FW_RANK   ?= 4              # adapter rank
FW_LAYERS ?= 0              # adapted blocks, the last ones (0: all)
# what `make board-check` checks for this board: the firmware's image and its fine-tuning plan
BOARD_BUDGET_IMAGE = $(FW_IMAGE)
BOARD_BUDGET_ARGS  = --lora $(strip $(FW_RANK)) --lora-layers $(strip $(FW_LAYERS)) -t $(strip $(FW_T)) --arena $(strip $(FW_ARENA))
M7_CFLAGS := -std=c99 -Wall -Wextra -Werror -pedantic -ffreestanding -O2 $(BOARD_ARCH) \
             -ffunction-sections -fdata-sections -Icore -Icompress
M7_FW_DEFS = -DET_FW_ARENA=$(strip $(FW_ARENA))u -DET_FW_T=$(strip $(FW_T)) -DET_FW_RANK=$(strip $(FW_RANK)) -DET_FW_LAYERS=$(strip $(FW_LAYERS))
# the firmware relinks when these change
M7_DEFS_STAMP := $(M7_BUILD)/fw-defs.txt
$(shell mkdir -p $(M7_BUILD); echo '$(M7_FW_DEFS)' | cmp -s - $(M7_DEFS_STAMP) || echo '$(M7_FW_DEFS)' > $(M7_DEFS_STAMP))
M7_SRC    := $(wildcard core/*.c compress/*.c)
M7_OBJ    := $(patsubst %.c,$(M7_BUILD)/obj/%.o,$(M7_SRC))
M7_IMG_C  := $(M7_BUILD)/image-$(notdir $(basename $(FW_IMAGE))).c

.DEFAULT_GOAL := m7
.PHONY: m7 m7-qemu
m7: $(M7_BUILD)/libedgetrain-m7.a $(M7_BUILD)/firmware.elf
	@arm-none-eabi-size $(M7_BUILD)/firmware.elf
	@set -- $$(arm-none-eabi-size $(M7_BUILD)/firmware.elf | tail -1); \
	 fl=$$(($$1 + $$2)); rm=$$(($$2 + $$3)); \
	 echo "cortex-m7: firmware takes $$fl of $(strip $(BOARD_FLASH)) bytes of flash and $$rm of $(strip $(BOARD_RAM)) bytes of RAM (the rest of RAM is stack)"; \
	 if [ $$fl -gt $(strip $(BOARD_FLASH)) ] || [ $$rm -gt $(strip $(BOARD_RAM)) ]; then \
	   echo "cortex-m7: error: the firmware does not fit BOARD_FLASH/BOARD_RAM of boards/cortex-m7.mk"; exit 1; fi

$(M7_BUILD)/obj/%.o: %.c $(wildcard core/*.h compress/*.h)
	@sh scripts/ensure-deps.sh $(BOARD_PKGS)
	@mkdir -p $(dir $@)
	$(BOARD_CC) $(M7_CFLAGS) -c $< -o $@

$(M7_BUILD)/libedgetrain-m7.a: $(M7_OBJ)
	@rm -f $@
	arm-none-eabi-ar rcs $@ $^

$(M7_IMG_C): $(FW_IMAGE)
	@mkdir -p $(dir $@)
	@{ echo '#include <stddef.h>'; \
	   echo 'const unsigned char et_model_image[] __attribute__((aligned(64))) = {'; \
	   od -An -v -tx1 $< | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	   echo '};'; echo "const size_t et_model_image_len = sizeof et_model_image;"; } > $@

$(M7_BUILD)/firmware.elf: boards/cortex-m7/fw_main.c boards/cortex-m7/link.ld $(M7_IMG_C) $(M7_BUILD)/libedgetrain-m7.a $(M7_DEFS_STAMP) | board-check
	$(BOARD_CC) $(M7_CFLAGS) $(M7_FW_DEFS) -nostdlib -Wl,--gc-sections -T boards/cortex-m7/link.ld \
	    boards/cortex-m7/fw_main.c $(M7_IMG_C) $(M7_BUILD)/libedgetrain-m7.a -lgcc -o $@

# The same firmware on QEMU's mps2-an500 (a Cortex-M7 board), printing through semihosting:
# image opened in place, one forward + backward + SGD step, high-water == plan, loss lower.
$(M7_BUILD)/firmware-qemu.elf: boards/cortex-m7/fw_main.c boards/cortex-m7/link-qemu.ld $(M7_IMG_C) $(M7_BUILD)/libedgetrain-m7.a $(M7_DEFS_STAMP)
	$(BOARD_CC) $(M7_CFLAGS) $(M7_FW_DEFS) -DET_FW_SEMIHOST -nostdlib -Wl,--gc-sections -T boards/cortex-m7/link-qemu.ld \
	    boards/cortex-m7/fw_main.c $(M7_IMG_C) $(M7_BUILD)/libedgetrain-m7.a -lgcc -o $@
m7-qemu: $(M7_BUILD)/firmware-qemu.elf
	@sh scripts/ensure-deps.sh qemu-system-arm
	timeout 120 qemu-system-arm -M mps2-an500 -nographic -monitor none -serial none \
	    -semihosting-config enable=on,target=native -kernel $<
