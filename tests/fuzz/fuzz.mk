# tests/fuzz/fuzz.mk - `make fuzz`: libFuzzer (clang -fsanitize=fuzzer,address,undefined) on
# et_image_open() for FUZZ_SECONDS (default 600), starting from the committed seeds in
# tests/fuzz/corpus; new interesting inputs land in $(BUILD)/fuzz/corpus, crashes in
# tests/fuzz/crashes (check_image replays both folders). The fuzz build defines
# ET_IMAGE_FUZZING, which makes the loader ignore checksum mismatches so that mutations
# reach the bounds checks behind the CRCs (the real build never defines it). Included from the top-level
# Makefile; standalone: make -f tests/fuzz/fuzz.mk fuzz
BUILD ?= build
FUZZ_SECONDS ?= 600
FUZZ_CC ?= clang
FUZZ_SRC := compress/image.c compress/qgpt_build.c compress/quant.c core/crc32.c core/gpt.c \
            core/math.c core/arena.c core/status.c core/rng.c
FUZZ_FLAGS := -std=c99 -g -O1 -D_POSIX_C_SOURCE=200809L -Icore -Icompress

.PHONY: fuzz fuzz-seeds
$(BUILD)/fuzz/fuzz_image: tests/fuzz/fuzz_image.c $(FUZZ_SRC) compress/et_image.h
	@sh scripts/ensure-deps.sh clang
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined -DET_IMAGE_FUZZING $< $(FUZZ_SRC) -lm -o $@

$(BUILD)/fuzz/seeds: tests/fuzz/fuzz_image.c $(FUZZ_SRC) compress/et_image.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -DET_FUZZ_SEEDS $< $(FUZZ_SRC) -lm -o $@

fuzz-seeds: $(BUILD)/fuzz/seeds
	@mkdir -p tests/fuzz/corpus
	$(BUILD)/fuzz/seeds tests/fuzz/corpus

fuzz: $(BUILD)/fuzz/fuzz_image
	@mkdir -p $(BUILD)/fuzz/corpus tests/fuzz/crashes
	$(BUILD)/fuzz/fuzz_image -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	    -artifact_prefix=tests/fuzz/crashes/ $(BUILD)/fuzz/corpus tests/fuzz/corpus
