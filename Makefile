# edgetrain - one Makefile for the library, the CLI, the tests and the benchmarks.
#   make             build/libedgetrain.a and build/edgetrain
#   make test        every Check suite (plain and ASan+UBSan builds), the freestanding
#                    check, the install + example check
#   make run         the main job: Tiny Shakespeare, baby GPT, val loss and a sample
#   make install PREFIX=/usr/local
#   make board=NAME  build for boards/NAME.mk
board ?= host
include boards/$(board).mk

PREFIX ?= /usr/local
ifeq ($(board),host)
BUILD  ?= build
else
BUILD  ?= build/$(board)
endif
CC     := $(BOARD_CC)
THREADS ?= 2

STD     := -std=c99 -Wall -Wextra -Werror
OPT     ?= -O3 $(BOARD_ARCH) -fno-math-errno
CORE_CFLAGS := $(STD) -ffreestanding -pedantic $(OPT)
HOST_CFLAGS := $(STD) -D_POSIX_C_SOURCE=200809L $(OPT) -pthread
INCS := -Icore -Icompress -Ihost
SAN  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

CORE_SRC    := $(wildcard core/*.c)
COMPRESS_SRC:= $(wildcard compress/*.c)
HOSTLIB_SRC := $(wildcard host/*.c)
CLI_SRC     := $(wildcard host/cli/*.c)
TEST_SRC    := $(wildcard tests/check_*.c)
HEADERS     := $(wildcard core/*.h compress/*.h host/*.h)
CHECK_PKGS  := check libsubunit-dev pkg-config
LIBS        := -lm -pthread

# Drivers plug in through their own fragment, accel/<name>/build.mk, which may append:
#   ACCEL_SRC   hosted C files compiled into libedgetrain.a (with HOST_CFLAGS + ACCEL_CFLAGS)
#   ACCEL_CFLAGS, ACCEL_LIBS, ACCEL_INCS  flags for them, libraries for every link
#   CHECK_PKGS  Debian packages make test installs when missing
#   ACCEL_HEADERS public headers to install
# and define extra targets of their own.
.DEFAULT_GOAL := $(if $(strip $(BOARD_GOAL)),$(strip $(BOARD_GOAL)),all)
ACCEL_SRC :=
ACCEL_CFLAGS :=
ACCEL_LIBS :=
ACCEL_INCS :=
ACCEL_HEADERS :=
-include $(sort $(wildcard accel/*/build.mk))
-include tests/fuzz/fuzz.mk
HOSTLIB_SRC += $(ACCEL_SRC)
HEADERS     += $(ACCEL_HEADERS)
LIBS        += $(ACCEL_LIBS)
INCS        += $(ACCEL_INCS)
HOST_CFLAGS += $(ACCEL_CFLAGS)

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))
LIB_OBJ     := $(call obj,$(BUILD),$(CORE_SRC) $(COMPRESS_SRC)) $(call obj,$(BUILD),$(HOSTLIB_SRC))
SAN_LIB_OBJ := $(call obj,$(BUILD)/san,$(CORE_SRC) $(COMPRESS_SRC) $(HOSTLIB_SRC))
TESTS       := $(filter-out $(addprefix $(BUILD)/tests/,$(BOARD_TEST_SKIP)),$(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC)))
SAN_TESTS   := $(patsubst tests/%.c,$(BUILD)/san/tests/%,$(TEST_SRC))

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all deps test test-plain test-san freestanding-check install-check install \
        run bench bench-deps clean fixtures
all: $(BUILD)/libedgetrain.a $(BUILD)/edgetrain

# --- packages a fresh Debian machine lacks
$(DEPS_STAMP): Makefile $(wildcard accel/*/build.mk) boards/$(board).mk
	@mkdir -p $(BUILD)
	@sh scripts/ensure-deps.sh $(CHECK_PKGS) $(BOARD_PKGS)
	@[ -z "$(BOARD_MULTIARCH_PKGS)" ] || sh scripts/ensure-deps.sh --multiarch $(BOARD_MULTIARCH_PKGS)
	@touch $@
deps: $(DEPS_STAMP)

# --- library
$(BUILD)/obj/core/%.o $(BUILD)/obj/compress/%.o: CFLAGS_X = $(CORE_CFLAGS)
$(BUILD)/obj/host/%.o $(BUILD)/obj/accel/%.o: CFLAGS_X = $(HOST_CFLAGS)
$(BUILD)/obj/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_X) $(INCS) -c $< -o $@

$(BUILD)/libedgetrain.a: $(LIB_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

$(BUILD)/edgetrain: $(CLI_SRC) $(BUILD)/libedgetrain.a $(wildcard host/cli/*.h)
	$(CC) $(HOST_CFLAGS) $(INCS) -Ihost/cli $(CLI_SRC) $(BUILD)/libedgetrain.a $(LIBS) -o $@

# --- tests
CHECK_LIBS = $(if $(BOARD_CHECK_LIBS),$(BOARD_CHECK_LIBS),$$(pkg-config --cflags --libs check))
$(BUILD)/tests/%: tests/%.c tests/et_check.h $(BUILD)/libedgetrain.a | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(HOST_CFLAGS) -Wno-error=unused-parameter $(INCS) -Itests $< $(BUILD)/libedgetrain.a \
	    $(CHECK_LIBS) $(LIBS) -o $@

$(BUILD)/san/obj/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	@$(CC) $(STD) -D_POSIX_C_SOURCE=200809L $(SAN) $(BOARD_ARCH) -fno-math-errno -pthread $(ACCEL_CFLAGS) $(INCS) -c $< -o $@
$(BUILD)/san/libedgetrain.a: $(SAN_LIB_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^
$(BUILD)/san/tests/%: tests/%.c tests/et_check.h $(BUILD)/san/libedgetrain.a | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(STD) -D_POSIX_C_SOURCE=200809L -pthread $(SAN) $(BOARD_ARCH) $(INCS) -Itests $< \
	    $(BUILD)/san/libedgetrain.a $$(pkg-config --cflags --libs check) $(LIBS) -o $@
$(BUILD)/san/edgetrain: $(CLI_SRC) $(BUILD)/san/libedgetrain.a
	$(CC) $(STD) -D_POSIX_C_SOURCE=200809L -pthread $(SAN) $(BOARD_ARCH) $(INCS) -Ihost/cli \
	    $(CLI_SRC) $(BUILD)/san/libedgetrain.a $(LIBS) -o $@

ifeq ($(board),host)
test: test-plain freestanding-check install-check test-san
	@echo "make test: all checks passed"
else ifeq ($(strip $(BOARD_HOSTED)),0)
test: $(BOARD_TEST) freestanding-check
	@echo "make board=$(board) test: all checks passed"
else
test: test-plain freestanding-check
	@echo "make board=$(board) test: all checks passed"
endif

test-plain: $(TESTS) $(BUILD)/edgetrain
	@ET_RUN="$(BOARD_RUN)" sh scripts/run-tests.sh plain "$(strip $(BOARD_RUN) $(BUILD)/edgetrain)" $(TESTS)

test-san: $(SAN_TESTS) $(BUILD)/san/edgetrain
	@sh scripts/run-tests.sh sanitized $(BUILD)/san/edgetrain $(SAN_TESTS)

# The core and the compression passes, built freestanding with no libraries, may
# leave undefined nothing but memcpy, memset and memmove.
freestanding-check:
	@mkdir -p $(BUILD)/fs
	@for f in $(CORE_SRC) $(COMPRESS_SRC); do \
	    $(CC) $(STD) -pedantic -ffreestanding -nostdlib -fno-math-errno -O2 $(INCS) -c $$f \
	        -o $(BUILD)/fs/$$(echo $$f | tr / _).o || exit 1; done
	@ld -r -o $(BUILD)/fs/core.o $(BUILD)/fs/*_*.o
	@sh scripts/freestanding-check.sh $(BUILD)/fs/core.o

# Installs into a staging prefix and builds examples/ against it with pkg-config alone.
install-check: $(BUILD)/libedgetrain.a
	@rm -rf $(BUILD)/stage
	@$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(BUILD)/stage >/dev/null
	@for f in examples/*.c; do \
	    PKG_CONFIG_PATH=$(CURDIR)/$(BUILD)/stage/lib/pkgconfig $(CC) -std=c99 -Wall -Wextra -Werror $$f \
	      $$(PKG_CONFIG_PATH=$(CURDIR)/$(BUILD)/stage/lib/pkgconfig pkg-config --cflags --libs edgetrain) \
	      -o $(BUILD)/stage/$$(basename $$f .c) || exit 1; \
	    echo "example $$f:"; $(BUILD)/stage/$$(basename $$f .c) || exit 1; done

install: $(BUILD)/libedgetrain.a $(BUILD)/edgetrain
	install -d $(PREFIX)/lib/pkgconfig $(PREFIX)/include/edgetrain $(PREFIX)/bin
	install -m 644 $(BUILD)/libedgetrain.a $(PREFIX)/lib/
	install -m 644 $(HEADERS) $(PREFIX)/include/edgetrain/
	install -m 755 $(BUILD)/edgetrain $(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' edgetrain.pc.in > $(PREFIX)/lib/pkgconfig/edgetrain.pc

# --- a board's budgets (boards/NAME.mk: BOARD_RAM, BOARD_FLASH; 0 = none): the model's
# device image against flash, its fine-tuning arena plan against RAM, through the host's
# `edgetrain plan`; fails saying what does not fit. A board file may name the model and
# the plan flags (BOARD_BUDGET_IMAGE, BOARD_BUDGET_ARGS); otherwise pass them:
#   make board=NAME board-check BUDGET_IMAGE=model.etimg BUDGET_ARGS="--lora 4 -t 64"
BUDGET_IMAGE ?= $(BOARD_BUDGET_IMAGE)
BUDGET_ARGS  ?= $(if $(strip $(BOARD_BUDGET_ARGS)),$(BOARD_BUDGET_ARGS),--lora 4 -t 64)
.PHONY: board-check
board-check:
	@[ -n "$(strip $(BUDGET_IMAGE))" ] || { echo "make board-check: name the model: BUDGET_IMAGE=model.etimg (edgetrain export --format image)"; exit 2; }
	@$(MAKE) --no-print-directory board=host build/edgetrain
	build/edgetrain plan --image $(strip $(BUDGET_IMAGE)) $(BUDGET_ARGS) --board $(board) --ram $(strip $(BOARD_RAM)) --flash $(strip $(BOARD_FLASH))

# --- the main job
run: $(BUILD)/edgetrain
	@sh scripts/main-job.sh $(BUILD)/edgetrain $(THREADS)

# --- benchmarks (not tests): edgetrain beside OpenBLAS and PyTorch in one run
BENCH_BIN := $(BUILD)/bench/bench_gemm $(BUILD)/bench/bench_train $(BUILD)/bench/bench_peak $(BUILD)/bench/bench_infer
$(BUILD)/bench/%: bench/%.c $(BUILD)/libedgetrain.a
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 -O2 $(BOARD_ARCH) -D_POSIX_C_SOURCE=200809L $(INCS) $< $(BUILD)/libedgetrain.a \
	    $(if $(findstring gemm,$@),-lopenblas) $(LIBS) -o $@
bench-deps:
	@sh scripts/ensure-deps.sh libopenblas-dev python3-torch python3-numpy
bench: bench-deps $(BENCH_BIN)
	@BUILD=$(BUILD) sh bench/run.sh

# Regenerates the PyTorch reference fixtures (needs Debian's python3-torch).
fixtures:
	@sh scripts/ensure-deps.sh python3-torch python3-numpy
	/usr/bin/python3 tests/fixtures/gen_gpt2_ref.py tests/fixtures

clean:
	rm -rf $(BUILD)
