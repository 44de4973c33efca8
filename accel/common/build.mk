# accel/common/build.mk - the layer every driver sits behind (always built): the backend
# registry (et_accel.h: names, devices, opening) and the proxy that runs the ops a
# driver lacks on the cpu backend (et_fallback.h). Drivers' fragments add
# -DET_HAVE_<NAME> to ACCEL_CFLAGS, which the registry reads.
ACCEL_SRC     += accel/common/accel.c accel/common/fallback.c
ACCEL_INCS    += -Iaccel/common
ACCEL_HEADERS += accel/common/et_accel.h accel/common/et_fallback.h
