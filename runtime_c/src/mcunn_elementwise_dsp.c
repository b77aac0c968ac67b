/* Elementwise add without broadcasting for cores with the DSP extension: TFLite's Add (both inputs rescaled to a
 * common 2^left_shift fixed point, summed, requantized), bit-exact with mcu_add_s8() in both rounding modes. What
 * makes it fast is not SIMD but a flat loop: no broadcast index per element, and each requantization one SMLAL
 * with its constants derived once per call (mcu_dsp_requantize()'s words, mcunn_dsp_support.h): 49 instructions
 * per element on Cortex-M4 (the portable kernel: 213). */
#include <stddef.h>

#include "mcunn_dsp.h"
#include "mcunn_dsp_support.h"

static int same_dims(const mcu_dims *a, const mcu_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* One element: the offset inputs shifted left (|x + offset| <= 255, so a left shift of up to 23 cannot overflow,
 * as in mcu_add_s8()), rescaled, summed, requantized, offset and clamped. */
static inline __attribute__((always_inline)) int8_t add_one(int32_t x1, int32_t x2, const mcu_add_params *p,
                                                            mcu_dsp_requant r1, mcu_dsp_requant r2,
                                                            mcu_dsp_requant ro, int full)
{
    const int32_t a = (int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift);
    const int32_t b = (int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift);
    const int32_t sum = mcu_add_wrap(mcu_dsp_requantize(a, r1), mcu_dsp_requantize(b, r2));
    return mcu_dsp_clamp_s8(mcu_dsp_requantize(sum, ro) + p->output_offset, p->activation.min, p->activation.max,
                            full);
}

/* Any shifts (the general requantization per element): out of line, rare. */
__attribute__((noinline)) static void add_loop(const mcu_add_params *p, const int8_t *in1,
                                                           const int8_t *in2, int8_t *out, int32_t size, int full)
{
    const mcu_dsp_requant r1 = mcu_dsp_requant_of(p->input1_mult, p->input1_shift);
    const mcu_dsp_requant r2 = mcu_dsp_requant_of(p->input2_mult, p->input2_shift);
    const mcu_dsp_requant ro = mcu_dsp_requant_of(p->output_mult, p->output_shift);
    /* each element is read before it is written: an output aliasing an input is fine */
    for (int32_t i = 0; i < size; i++)
    {
        out[i] = add_one(in1[i], in2[i], p, r1, r2, ro, full);
    }
}

/* One requantization with no left shift (shift <= 0) as one SMLAL with branch-free constants, the same words
 * mcu_dsp_requantize() adds: for a right shift r >= 1 its rounding words (double rounding: bit 31 of the low word
 * flipped and a borrow for a negative x; single: 2^(30 + r) alone); for r = 0 the input doubled first (`pre`), so
 * that (x m + 2^30) >> 31 becomes the high word of 2x m + 2^31. */
typedef struct
{
    int32_t m;
    uint32_t lo, sign, hi, borrow;
    int32_t right_m1; /* the high word's shift */
    int32_t pre;      /* 1: x doubled first (r = 0) */
} add_rq;

static add_rq add_rq_of(int32_t multiplier, int32_t shift)
{
    add_rq q;
    const int32_t right = -shift;
    q.m = multiplier;
    q.sign = 0;
    q.borrow = 0;
    q.hi = 0;
    q.lo = 0x80000000u;
    q.right_m1 = 0;
    q.pre = right == 0;
    if (right >= 1)
    {
#if MCU_SINGLE_ROUNDING
        if (right >= 2)
        {
            q.lo = 0;
            q.hi = 1u << (right - 2);
        }
#else
        const mcu_dsp_requant r = mcu_dsp_requant_of(multiplier, shift);
        q.lo = r.round_lo;
        q.hi = r.round_hi;
        q.sign = 0x80000000u;
        q.borrow = r.borrow;
#endif
        q.right_m1 = right - 1;
    }
    return q;
}

static inline __attribute__((always_inline)) int32_t add_rq_apply(int32_t x, add_rq q)
{
    const uint32_t lo = q.lo ^ ((uint32_t)x & q.sign);
    const uint32_t hi = q.hi + ((uint32_t)(x >> 31) & q.borrow);
    const int64_t t = (int64_t)(((uint64_t)hi << 32) | lo) + (int64_t)x * q.m;
    return (int32_t)(t >> 32) >> q.right_m1;
}

/* Every shift <= 0 (the output's <= -1) and a left shift <= 22: TFLite's adds. |x + offset| * 2^(left + 1) < 2^31
 * and the sum of the rescaled inputs stays below 2^30, so neither the doubling nor the sum can overflow. */
static inline __attribute__((always_inline)) void add_loop_fast(const mcu_add_params *p, const int8_t *in1,
                                                                const int8_t *in2, int8_t *out, int32_t size,
                                                                int full)
{
    const add_rq q1 = add_rq_of(p->input1_mult, p->input1_shift), q2 = add_rq_of(p->input2_mult, p->input2_shift);
    const add_rq qo = add_rq_of(p->output_mult, p->output_shift);
    const int32_t ls1 = p->left_shift + q1.pre, ls2 = p->left_shift + q2.pre;
    const int32_t off1 = p->input1_offset, off2 = p->input2_offset, out_off = p->output_offset;
    const int32_t lo = p->activation.min, hi = p->activation.max;
    /* each element is read before it is written: an output aliasing an input is fine */
    for (int32_t i = 0; i < size; i++)
    {
        const int32_t a = (int32_t)((uint32_t)(in1[i] + off1) << ls1);
        const int32_t b = (int32_t)((uint32_t)(in2[i] + off2) << ls2);
        const int32_t sum = mcu_add_wrap(add_rq_apply(a, q1), add_rq_apply(b, q2));
        out[i] = mcu_dsp_clamp_s8(add_rq_apply(sum, qo) + out_off, lo, hi, full);
    }
}

mcu_status mcu_add_dsp_s8(const mcu_context *ctx,
                          const mcu_add_params *add_params,
                          const mcu_dims *input1_dims,
                          const int8_t *input1,
                          const mcu_dims *input2_dims,
                          const int8_t *input2,
                          const mcu_dims *output_dims,
                          int8_t *output)
{
    (void)ctx;
    if (!same_dims(input1_dims, output_dims) || !same_dims(input2_dims, output_dims) || output_dims->n < 0 ||
        output_dims->h < 0 || output_dims->w < 0 || output_dims->c < 0 || add_params->left_shift < 0 ||
        add_params->left_shift > 23)
    {
        return MCU_ARG_ERROR;
    }
    const int32_t size = output_dims->n * output_dims->h * output_dims->w * output_dims->c;
    const int full = add_params->activation.min == -128 && add_params->activation.max == 127;
    if (add_params->input1_shift <= 0 && add_params->input2_shift <= 0 && add_params->output_shift <= -1 &&
        add_params->left_shift <= 22)
    {
        if (full)
        {
            add_loop_fast(add_params, input1, input2, output, size, 1);
        }
        else
        {
            add_loop_fast(add_params, input1, input2, output, size, 0);
        }
    }
    else
    {
        add_loop(add_params, input1, input2, output, size, full);
    }
    return MCU_OK;
}
