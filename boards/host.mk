# boards/host.mk - this machine (the default board).
# The library is built for the CPU it is built on: SIMD paths are chosen at compile
# time (AVX2+FMA on x86-64, NEON on aarch64) with a scalar path always present.
BOARD_CC      ?= gcc
BOARD_ARCH    ?= -march=native
BOARD_RUN     :=
BOARD_PKGS    :=
BOARD_MULTIARCH_PKGS :=
BOARD_CHECK_LIBS :=
BOARD_HOSTED  := 1
BOARD_RAM     ?= 0        # bytes; 0 = no budget check (a hosted machine)
BOARD_FLASH   ?= 0
BOARD_TEST_SKIP :=
