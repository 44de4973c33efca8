# accel/cuda/build.mk - the CUDA driver (issue 5). CUDA=1 builds it, and is the default
# when nvcc is found (/usr/local/cuda/bin/nvcc or on PATH); CUDA=0 leaves it out. The
# .cu kernels are compiled by nvcc for CUDA_ARCHS (sm_87: Jetson Orin, sm_90: H100) plus
# compute_90 PTX for newer GPUs, and go into libedgetrain.a beside the C files, which
# gcc compiles against the CUDA runtime and cuBLAS headers. No GPU is needed to build or
# link; without one the driver reports "no CUDA device".
# et_bf16.h (the host's exact model of the device's fp32 -> bf16 rounding, pure C) is on
# the include path in every build: the conformance suite's bf16 reference uses it.
ACCEL_INCS += -Iaccel/cuda
NVCC ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
# only for the host board by default: a cross board (boards/NAME.mk) sets CUDA=1 itself
CUDA ?= $(if $(and $(NVCC),$(filter host,$(board))),1,0)
ifeq ($(CUDA),1)
ifeq ($(NVCC),)
$(error CUDA=1 but no nvcc: install the CUDA toolkit or set NVCC=/path/to/nvcc)
endif
CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCHS ?= 80 87 90
CUDA_GENCODE := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_90,code=compute_90
CUDA_CU    := accel/cuda/kernels_elementwise.cu accel/cuda/kernels_norm.cu \
              accel/cuda/kernels_attention.cu accel/cuda/kernels_bf16.cu
CUDA_CU_OBJ := $(patsubst %.cu,$(BUILD)/obj/%.cu.o,$(CUDA_CU))
ACCEL_SRC     += accel/cuda/cuda_driver.c accel/cuda/cuda_ops.c accel/cuda/cuda_bf16.c
ACCEL_CFLAGS  += -DET_HAVE_CUDA -I$(CUDA_HOME)/include -DET_CUDA_LIBDIR='"$(CUDA_HOME)/lib64"'
# cuBLAS is dlopen'ed when a device opens (cuda_driver.c says why); cudart is linked
ACCEL_LIBS    += -Wl,--as-needed -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -ldl
ACCEL_HEADERS += accel/cuda/et_cuda.h

# a fragment's first rule would otherwise become make's default goal (the Makefile's is all)
ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := all
endif

# device code cannot be sanitized: the ASan build links the same kernel objects. No C++
# exceptions or thread-safe statics: the objects then need nothing from libstdc++.
$(BUILD)/obj/accel/cuda/%.cu.o: accel/cuda/%.cu accel/cuda/et_cuda_kernels.h \
                                accel/cuda/et_cuda_reduce.cuh accel/cuda/build.mk | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) -O3 -std=c++17 $(CUDA_GENCODE) -Werror all-warnings \
	    -Xcompiler -Wall,-Wextra,-Werror,-fno-exceptions,-fno-threadsafe-statics \
	    -Icore -Iaccel/cuda -c $< -o $@
$(BUILD)/libedgetrain.a $(BUILD)/san/libedgetrain.a: $(CUDA_CU_OBJ)

CUDA_C_OBJ := $(foreach d,$(BUILD)/obj $(BUILD)/san/obj,$(foreach f,cuda_driver cuda_ops cuda_bf16,\
              $(d)/accel/cuda/$(f).o))
$(CUDA_C_OBJ): accel/cuda/et_cuda_impl.h accel/cuda/et_cuda_kernels.h
endif
