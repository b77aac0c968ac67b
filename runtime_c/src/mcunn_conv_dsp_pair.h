/* The SIMD32 MAC loop of the general convolution's pixel pair, private to the kernels that run it: the int8
 * kernel (mcu_conv_dsp_s8() in mcunn_conv_dsp.c) and the packed-activation ones (mcunn_packed_dsp.c), which
 * widen their packed windows into the same int16 layout and then multiply exactly as the int8 kernel does.
 *
 * Input: the windows of two output pixels a and b, widened to int16 with the input offset added and
 * interleaved per 4-block of the window, {a01, a23, b01, b23} (4 words a block, `blocks` blocks); the weights
 * in the layout compiler/ops/fast_layout.py writes for the general convolution: channels in pairs, each pair's
 * 4-blocks interleaved (8 bytes a block), an odd last channel alone (4 bytes a block).
 *
 * Always inlined into each caller's non-inlined pixel-pair function, so gcc keeps the 4 accumulators, the
 * weights' lanes, a window word and the pointers in Cortex-M4's registers, as when the loop was written there. */
#ifndef MCUNN_CONV_DSP_PAIR_H
#define MCUNN_CONV_DSP_PAIR_H

#include <stdint.h>

#include "mcunn_dsp_support.h"

#if MCU_DSP_ASM
/* One 4-block of the 2 x 2 block (the channel pair's 8 weight bytes at w, the 4 window words at c, both
 * post-incremented): 2 LDR, 4 SXTB16, 2 LDRD, 8 SMLAD. */
#define MCU_CONV_DSP_BLOCK_ASM                                                                                  \
    "ldr %[t0], [%[w]], #4\n\t"                                                                                 \
    "ldr %[t2], [%[w]], #4\n\t"                                                                                 \
    "sxtb16 %[t1], %[t0], ror #8\n\t"                                                                           \
    "sxtb16 %[t0], %[t0]\n\t"                                                                                   \
    "sxtb16 %[t3], %[t2], ror #8\n\t"                                                                           \
    "sxtb16 %[t2], %[t2]\n\t"                                                                                   \
    "ldrd %[v0], %[v1], [%[c]], #8\n\t"                                                                         \
    "smlad %[a00], %[v0], %[t0], %[a00]\n\t"                                                                    \
    "smlad %[a01], %[v0], %[t2], %[a01]\n\t"                                                                    \
    "smlad %[a00], %[v1], %[t1], %[a00]\n\t"                                                                    \
    "smlad %[a01], %[v1], %[t3], %[a01]\n\t"                                                                    \
    "ldrd %[v0], %[v1], [%[c]], #8\n\t"                                                                         \
    "smlad %[a10], %[v0], %[t0], %[a10]\n\t"                                                                    \
    "smlad %[a11], %[v0], %[t2], %[a11]\n\t"                                                                    \
    "smlad %[a10], %[v1], %[t1], %[a10]\n\t"                                                                    \
    "smlad %[a11], %[v1], %[t3], %[a11]\n\t"
#endif

/* The accumulators of n output channels (n <= the caller's chunk) of the pixel pair whose windows are at cols:
 * acc[2j] pixel a, acc[2j + 1] pixel b of channel j, starting from bias[j] (bias NULL: 0). The channels'
 * weights start at w; returns w past them (the next chunk's). */
static inline __attribute__((always_inline)) const int8_t *mcu_conv_dsp_pair_macs(const int32_t *cols,
                                                                                 int32_t blocks,
                                                                                 const int8_t *w,
                                                                                 const int32_t *bias, int32_t n,
                                                                                 int32_t *acc)
{
    int32_t *a = acc;
    for (int32_t pairs = n >> 1; pairs > 0; pairs--, a += 4)
    {
        int32_t a00 = 0, a01 = 0;
        if (bias)
        {
            a00 = bias[0];
            a01 = bias[1];
            bias += 2;
        }
        int32_t a10 = a00, a11 = a01;
#if MCU_DSP_ASM
        /* gcc 12 schedules the C loop below into 21 instructions per block, re-loading window words it ran
         * out of registers for; this one is 16 per block in 13 registers, two blocks per iteration (an odd
         * block first) */
        const int32_t *c = cols;
        int32_t k = blocks, t0, t1, t2, t3, v0, v1;
        __asm__ volatile("lsrs %[k], %[k], #1\n\t"
                         "bcc 2f\n\t"
                         MCU_CONV_DSP_BLOCK_ASM
                         "2:\n\t"
                         "cmp %[k], #0\n\t"
                         "beq 3f\n\t"
                         "1:\n\t"
                         MCU_CONV_DSP_BLOCK_ASM
                         MCU_CONV_DSP_BLOCK_ASM
                         "subs %[k], %[k], #1\n\t"
                         "bne 1b\n\t"
                         "3:\n\t"
                         : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [c] "+r"(c),
                           [w] "+r"(w), [k] "+r"(k), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2),
                           [t3] "=&r"(t3), [v0] "=&r"(v0), [v1] "=&r"(v1)
                         :
                         : "cc", "memory");
#else
        /* weights first, then each window word is consumed by both channels as soon as it is loaded: 4
         * accumulators, 4 weight pairs, 1 window word and the pointers stay within the registers */
        const int32_t *c = cols;
        for (int32_t k = blocks; k > 0; k--, c += 4, w += 8)
        {
            const int32_t w0 = mcu_read_s8x4(w), w1 = mcu_read_s8x4(w + 4);
            const int32_t l0 = mcu_sxtb16(w0), h0 = mcu_sxtb16_ror8(w0);
            const int32_t l1 = mcu_sxtb16(w1), h1 = mcu_sxtb16_ror8(w1);
            int32_t v = c[0];
            a00 = mcu_smlad(v, l0, a00);
            a01 = mcu_smlad(v, l1, a01);
            v = c[1];
            a00 = mcu_smlad(v, h0, a00);
            a01 = mcu_smlad(v, h1, a01);
            v = c[2];
            a10 = mcu_smlad(v, l0, a10);
            a11 = mcu_smlad(v, l1, a11);
            v = c[3];
            a10 = mcu_smlad(v, h0, a10);
            a11 = mcu_smlad(v, h1, a11);
        }
#endif
        a[0] = a00;
        a[1] = a10;
        a[2] = a01;
        a[3] = a11;
    }
    if (n & 1)
    {
        int32_t a0 = bias ? bias[0] : 0, a1 = a0;
        const int32_t *c = cols;
        for (int32_t k = blocks; k > 0; k--)
        {
            const int32_t wv = mcu_read_s8x4(w);
            w += 4;
            const int32_t wl = mcu_sxtb16(wv), wh = mcu_sxtb16_ror8(wv);
            a0 = mcu_smlad(c[0], wl, a0);
            a0 = mcu_smlad(c[1], wh, a0);
            a1 = mcu_smlad(c[2], wl, a1);
            a1 = mcu_smlad(c[3], wh, a1);
            c += 4;
        }
        a[0] = a0;
        a[1] = a1;
    }
    return w;
}

#endif /* MCUNN_CONV_DSP_PAIR_H */
