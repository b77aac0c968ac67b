/* What the packed-kernel test and benchmark programs share (packed_main.c, packed_mve_main.c,
 * packed_bench_main.c): the kernels' function types, the choice of a kernel by input bits, the FAIL line of a
 * case and the timed region. Include after packed_cases.h and kt_text.h.
 *
 * Before including, a program that picks kernels with pk_conv_kernel / pk_dw_kernel defines
 * PK_FAST_KERNEL(op, a): the fast variant's name of the portable kernel mcu_<op>_<a>w8_s8, e.g.
 *   #define PK_FAST_KERNEL(op, a) mcu_##op##_dsp_##a##w8_s8
 *
 * The functions are static (not inline, so that each program compiles them as it did when they were its own)
 * and marked unused: a program takes only what it needs. */
#ifndef PK_HARNESS_H
#define PK_HARNESS_H

#include <stdint.h>

#include "kt_text.h"
#include "packed_cases.h"

typedef mcu_status (*pk_conv_fn)(const mcu_context *, const mcu_conv_params *, const mcu_per_channel_quant_params *,
                                 int32_t, const mcu_dims *, const uint8_t *, const mcu_dims *, const int8_t *,
                                 const mcu_dims *, const int32_t *, const mcu_dims *, uint8_t *);
typedef mcu_status (*pk_dw_fn)(const mcu_context *, const mcu_dw_conv_params *, const mcu_per_channel_quant_params *,
                               int32_t, const mcu_dims *, const uint8_t *, const mcu_dims *, const int8_t *,
                               const mcu_dims *, const int32_t *, const mcu_dims *, uint8_t *);

/* Prints "FAIL case <i> (<describe>): <what> <a> <b>". */
__attribute__((unused)) static void pk_fail(int32_t i, const char *what, int32_t a, int32_t b)
{
    char line[256];
    char *p = kt_put_str(line, "FAIL case ");
    p = kt_put_int(p, i);
    p = kt_put_str(p, " (");
    p = kt_put_str(p, pk_cases[i].describe);
    p = kt_put_str(p, "): ");
    p = kt_put_str(p, what);
    p = kt_put_str(p, " ");
    p = kt_put_int(p, a);
    p = kt_put_str(p, " ");
    p = kt_put_int(p, b);
    p = kt_put_str(p, "\n");
    *p = '\0';
    kt_print(line);
}

#ifdef PK_FAST_KERNEL
/* The a<bits>w8 convolution: the portable kernel, or with fast its PK_FAST_KERNEL variant. */
__attribute__((unused)) static pk_conv_fn pk_conv_kernel(int32_t bits, int fast)
{
    if (bits == 4)
    {
        return fast ? PK_FAST_KERNEL(conv, a4) : mcu_conv_a4w8_s8;
    }
    if (bits == 2)
    {
        return fast ? PK_FAST_KERNEL(conv, a2) : mcu_conv_a2w8_s8;
    }
    return fast ? PK_FAST_KERNEL(conv, a8) : mcu_conv_a8w8_s8;
}

/* The a<bits>w8 depthwise convolution: the portable kernel, or with fast its PK_FAST_KERNEL variant. */
__attribute__((unused)) static pk_dw_fn pk_dw_kernel(int32_t bits, int fast)
{
    if (bits == 4)
    {
        return fast ? PK_FAST_KERNEL(dwconv, a4) : mcu_dwconv_a4w8_s8;
    }
    if (bits == 2)
    {
        return fast ? PK_FAST_KERNEL(dwconv, a2) : mcu_dwconv_a2w8_s8;
    }
    return fast ? PK_FAST_KERNEL(dwconv, a8) : mcu_dwconv_a8w8_s8;
}
#endif

#ifndef KT_HOST
/* One kernel run of case c (fast: its fast variant), returning its status. */
typedef int (*pk_runner)(const pk_case *c, int fast);

/* The board_counter() ticks of r(c, fast) (its status in *status; r NULL: the empty region, the overhead to
 * subtract). noipa and the memory clobbers keep the call, and nothing else, between the two counter reads. */
__attribute__((noipa, unused)) static uint64_t pk_timed(pk_runner r, const pk_case *c, int fast, int *status)
{
    __asm__ volatile("" ::: "memory");
    const uint64_t t0 = board_counter();
    __asm__ volatile("" ::: "memory");
    *status = r ? r(c, fast) : 0;
    __asm__ volatile("" ::: "memory");
    const uint64_t t1 = board_counter();
    __asm__ volatile("" ::: "memory");
    return t1 - t0;
}
#endif

#endif /* PK_HARNESS_H */
