/* Per-kernel benchmark firmware of the MVE kernels (bench/kernels_mve.py): bench_main.c with the MVE kernels
 * as the fast ones (KT_MVE). Integer-MVE targets only (qemu-m55). */
#include "mcunn_mve.h"

#if !(defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1))
#error "mve_bench_main.c needs an integer-MVE target (-mcpu=cortex-m55)"
#endif

#define KT_MVE 1
#include "bench_main.c"
