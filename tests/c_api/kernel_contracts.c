/* What mcunn.h promises, run: negative padding is a start offset into a larger input buffer (window
 * kernels on the whole buffer equal the same kernels on the copied region with padding 0), and each
 * documented MCU_ARG_ERROR case is returned with nothing written. Built by tests/test_c_api.py under
 * ASan/UBSan; prints one line per failed check and exits 1 if any failed. */
#include <stdio.h>
#include <string.h>

#include "mcunn.h"

static int failures = 0;

#define CHECK(cond)                                                     \
    do                                                                  \
    {                                                                   \
        if (!(cond))                                                    \
        {                                                               \
            printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            failures++;                                                 \
        }                                                               \
    } while (0)

#define SENTINEL ((int8_t)0x5A)

static int untouched(const int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
    {
        if (p[i] != SENTINEL)
        {
            return 0;
        }
    }
    return 1;
}

/* An error return must leave the output as it was. */
#define EXPECT_ARG_ERROR(out, call)                             \
    do                                                          \
    {                                                           \
        memset((out), SENTINEL, sizeof(out));                   \
        CHECK((call) == MCU_ARG_ERROR);                         \
        CHECK(untouched((out), (int32_t)sizeof(out)));          \
    } while (0)

enum { H = 7, W = 6, C = 3, TOP = 2, LEFT = 1, RH = 5, RW = 4, K = 3, OH = RH - K + 1, OW = RW - K + 1 };

static int8_t whole[1 * H * W * C];
static int8_t region[1 * RH * RW * C];

static void negative_padding_is_a_start_offset(void)
{
    const mcu_dims whole_dims = {1, H, W, C}, region_dims = {1, RH, RW, C};
    const mcu_region_params at = {TOP, LEFT};
    CHECK(mcu_copy_region_s8(NULL, &at, &whole_dims, whole, &region_dims, region) == MCU_OK);

    static int8_t filter[C * K * K * C], dw_filter[K * K * C];
    static int32_t bias[C], mult[C], shift[C];
    for (int32_t i = 0; i < (int32_t)sizeof(filter); i++)
    {
        filter[i] = (int8_t)((i * 37) % 255 - 127);
    }
    for (int32_t i = 0; i < (int32_t)sizeof(dw_filter); i++)
    {
        dw_filter[i] = (int8_t)((i * 53) % 255 - 127);
    }
    for (int32_t c = 0; c < C; c++)
    {
        bias[c] = 100 * c - 50;
        mult[c] = 1518500250; /* ~0.707 * 2^31 */
        shift[c] = -7;
    }
    const mcu_per_channel_quant_params quant = {mult, shift};
    const mcu_dims filter_dims = {C, K, K, C}, dw_filter_dims = {1, K, K, C}, bias_dims = {1, 1, 1, C};
    const mcu_dims out_dims = {1, OH, OW, C};
    int8_t a[OH * OW * C], b[OH * OW * C];

    /* the whole buffer with padding (-TOP, -LEFT) reads exactly the region */
    mcu_conv_params conv = {3, -5, {1, 1}, {-LEFT, -TOP}, {1, 1}, {-128, 127}, 1};
    CHECK(mcu_conv_s8(NULL, &conv, &quant, &whole_dims, whole, &filter_dims, filter, &bias_dims, bias, &out_dims,
                      a) == MCU_OK);
    conv.padding = (mcu_tile){0, 0};
    CHECK(mcu_conv_s8(NULL, &conv, &quant, &region_dims, region, &filter_dims, filter, &bias_dims, bias, &out_dims,
                      b) == MCU_OK);
    CHECK(memcmp(a, b, sizeof(a)) == 0);

    int32_t acc[C];
    const mcu_context scratch = {acc, (int32_t)sizeof(acc)};
    mcu_dw_conv_params dw = {3, -5, 1, {1, 1}, {-LEFT, -TOP}, {1, 1}, {-128, 127}};
    CHECK(mcu_dwconv_s8(&scratch, &dw, &quant, &whole_dims, whole, &dw_filter_dims, dw_filter, &bias_dims, bias,
                        &out_dims, a) == MCU_OK);
    dw.padding = (mcu_tile){0, 0};
    CHECK(mcu_dwconv_s8(&scratch, &dw, &quant, &region_dims, region, &dw_filter_dims, dw_filter, &bias_dims, bias,
                        &out_dims, b) == MCU_OK);
    CHECK(memcmp(a, b, sizeof(a)) == 0);

    const mcu_dims window = {1, K, K, 1};
    mcu_pool_params pool = {{1, 1}, {-LEFT, -TOP}, {-128, 127}};
    CHECK(mcu_max_pool_s8(NULL, &pool, &whole_dims, whole, &window, &out_dims, a) == MCU_OK);
    pool.padding = (mcu_tile){0, 0};
    CHECK(mcu_max_pool_s8(NULL, &pool, &region_dims, region, &window, &out_dims, b) == MCU_OK);
    CHECK(memcmp(a, b, sizeof(a)) == 0);

    pool.padding = (mcu_tile){-LEFT, -TOP};
    CHECK(mcu_avg_pool_s8(NULL, &pool, &whole_dims, whole, &window, &out_dims, a) == MCU_OK);
    pool.padding = (mcu_tile){0, 0};
    CHECK(mcu_avg_pool_s8(NULL, &pool, &region_dims, region, &window, &out_dims, b) == MCU_OK);
    CHECK(memcmp(a, b, sizeof(a)) == 0);

    /* and paste puts the region back where it came from */
    int8_t copy[sizeof(whole)];
    memcpy(copy, whole, sizeof(copy));
    memset(copy + (TOP * W + LEFT) * C, 0, C); /* one pixel of the region, restored by the paste */
    CHECK(mcu_paste_region_s8(NULL, &at, &region_dims, region, &whole_dims, copy) == MCU_OK);
    CHECK(memcmp(copy, whole, sizeof(copy)) == 0);
}

static void documented_errors(void)
{
    static int32_t mult[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, shift[4] = {0, 0, 0, 0};
    const mcu_per_channel_quant_params quant = {mult, shift};
    int8_t in[2 * 2 * 2 * 4] = {0}, out[64];
    const mcu_dims d4 = {1, 2, 2, 4}, bias_dims = {1, 1, 1, 4};
    int8_t filt[4 * 1 * 1 * 4] = {0};

    /* conv: groups < 1, filter channels x groups != input channels, filter n != output channels */
    const mcu_dims f = {4, 1, 1, 4}, f_bad = {4, 1, 1, 3}, f_n = {3, 1, 1, 4};
    mcu_conv_params conv = {0, 0, {1, 1}, {0, 0}, {1, 1}, {-128, 127}, 0};
    EXPECT_ARG_ERROR(out, mcu_conv_s8(NULL, &conv, &quant, &d4, in, &f, filt, &bias_dims, NULL, &d4, out));
    conv.groups = 1;
    EXPECT_ARG_ERROR(out, mcu_conv_s8(NULL, &conv, &quant, &d4, in, &f_bad, filt, &bias_dims, NULL, &d4, out));
    EXPECT_ARG_ERROR(out, mcu_conv_s8(NULL, &conv, &quant, &d4, in, &f_n, filt, &bias_dims, NULL, &d4, out));
    CHECK(mcu_conv_s8(NULL, &conv, &quant, &d4, in, &f, filt, &bias_dims, NULL, &d4, out) == MCU_OK);

    /* depthwise: missing or small scratch, channel mismatch */
    int32_t acc[4];
    const mcu_context small = {acc, 8}, ok = {acc, (int32_t)sizeof(acc)};
    const mcu_dims dwf = {1, 1, 1, 4};
    const mcu_dw_conv_params dw = {0, 0, 1, {1, 1}, {0, 0}, {1, 1}, {-128, 127}};
    EXPECT_ARG_ERROR(out, mcu_dwconv_s8(NULL, &dw, &quant, &d4, in, &dwf, filt, &bias_dims, NULL, &d4, out));
    EXPECT_ARG_ERROR(out, mcu_dwconv_s8(&small, &dw, &quant, &d4, in, &dwf, filt, &bias_dims, NULL, &d4, out));
    const mcu_dw_conv_params dw2 = {0, 0, 2, {1, 1}, {0, 0}, {1, 1}, {-128, 127}};
    EXPECT_ARG_ERROR(out, mcu_dwconv_s8(&ok, &dw2, &quant, &d4, in, &dwf, filt, &bias_dims, NULL, &d4, out));
    CHECK(mcu_dwconv_s8(&ok, &dw, &quant, &d4, in, &dwf, filt, &bias_dims, NULL, &d4, out) == MCU_OK);

    /* fully connected: the example (it documented only MCU_OK) */
    const mcu_fc_params fc = {0, 0, 0, {-128, 127}};
    const mcu_dims fin = {2, 1, 1, 4}, ff = {4, 1, 1, 4}, ff_bad = {3, 1, 1, 4}, fout = {2, 1, 1, 4};
    EXPECT_ARG_ERROR(out, mcu_fully_connected_s8(NULL, &fc, &quant, &fin, in, &ff_bad, filt, &bias_dims, NULL, &fout,
                                                 out));
    CHECK(mcu_fully_connected_s8(NULL, &fc, &quant, &fin, in, &ff, filt, &bias_dims, NULL, &fout, out) == MCU_OK);

    /* add / mul: a dimension neither the output's nor 1 */
    const mcu_dims d_bad = {1, 2, 2, 3};
    const mcu_add_params add = {0, 0, 0, 1 << 30, 0, 1 << 30, 0, 1 << 30, 0, 20, {-128, 127}};
    const mcu_mul_params mul = {0, 0, 0, 1 << 30, 0, {-128, 127}};
    EXPECT_ARG_ERROR(out, mcu_add_s8(NULL, &add, &d_bad, in, &d4, in, &d4, out));
    EXPECT_ARG_ERROR(out, mcu_mul_s8(NULL, &mul, &d4, in, &d_bad, in, &d4, out));
    CHECK(mcu_add_s8(NULL, &add, &d4, in, &d4, in, &d4, out) == MCU_OK);

    /* average pooling: a window with no tap inside the input; max pooling returns MCU_OK for it */
    const mcu_dims win = {1, 1, 1, 1}, pout = {1, 3, 3, 4};
    const mcu_pool_params pool = {{1, 1}, {0, 0}, {-128, 127}};
    EXPECT_ARG_ERROR(out, mcu_avg_pool_s8(NULL, &pool, &d4, in, &win, &pout, out));
    CHECK(mcu_max_pool_s8(NULL, &pool, &d4, in, &win, &pout, out) == MCU_OK);

    /* mean: output dims not [N, 1, 1, C] */
    const mcu_mean_params mean = {0, 0};
    const mcu_per_tensor_quant_params q1 = {1 << 30, 0};
    const mcu_dims mout = {1, 1, 1, 4}, mout_bad = {1, 1, 2, 4};
    EXPECT_ARG_ERROR(out, mcu_mean_hw_s8(NULL, &mean, &q1, &d4, in, &mout_bad, out));
    CHECK(mcu_mean_hw_s8(NULL, &mean, &q1, &d4, in, &mout, out) == MCU_OK);

    /* softmax: empty rows, dims differ, shift out of range, diff_min * 2^shift below -2^31 */
    const mcu_softmax_params sm = {-248}, sm_bad = {-(1 << 20)};
    const mcu_per_tensor_quant_params qs = {1 << 30, 22}, qs_bad = {1 << 30, 31};
    const mcu_dims rows0 = {1, 1, 4, 0};
    EXPECT_ARG_ERROR(out, mcu_softmax_s8(NULL, &sm, &qs, &rows0, in, &rows0, out));
    EXPECT_ARG_ERROR(out, mcu_softmax_s8(NULL, &sm, &qs, &d4, in, &mout, out));
    EXPECT_ARG_ERROR(out, mcu_softmax_s8(NULL, &sm, &qs_bad, &d4, in, &d4, out));
    EXPECT_ARG_ERROR(out, mcu_softmax_s8(NULL, &sm_bad, &qs, &d4, in, &d4, out));
    CHECK(mcu_softmax_s8(NULL, &sm, &qs, &d4, in, &d4, out) == MCU_OK);

    /* lut: no table, element counts differ */
    static int8_t table[256];
    const mcu_lut_params lut = {table}, no_table = {NULL};
    EXPECT_ARG_ERROR(out, mcu_lut_s8(NULL, &no_table, &d4, in, &d4, out));
    EXPECT_ARG_ERROR(out, mcu_lut_s8(NULL, &lut, &d4, in, &d_bad, out));
    CHECK(mcu_lut_s8(NULL, &lut, &d4, in, &d4, out) == MCU_OK);

    /* concat: offset < 0, offset + in_row > out_row, outer counts differ */
    const mcu_dims cin = {4, 1, 1, 2}, cout = {4, 1, 1, 6}, cout_bad = {3, 1, 1, 6};
    const mcu_concat_params at4 = {4}, at5 = {5}, neg = {-1};
    EXPECT_ARG_ERROR(out, mcu_concat_s8(NULL, &neg, &cin, in, &cout, out));
    EXPECT_ARG_ERROR(out, mcu_concat_s8(NULL, &at5, &cin, in, &cout, out));
    EXPECT_ARG_ERROR(out, mcu_concat_s8(NULL, &at4, &cin, in, &cout_bad, out));
    CHECK(mcu_concat_s8(NULL, &at4, &cin, in, &cout, out) == MCU_OK);

    /* pad: negative pre_pad, input at pre_pad leaving the output */
    const mcu_pad_params pad = {{0, 1, 1, 0}, -3}, pad_neg = {{0, -1, 0, 0}, 0}, pad_far = {{0, 2, 0, 0}, 0};
    const mcu_dims padded = {1, 3, 3, 4};
    EXPECT_ARG_ERROR(out, mcu_pad_s8(NULL, &pad_neg, &d4, in, &padded, out));
    EXPECT_ARG_ERROR(out, mcu_pad_s8(NULL, &pad_far, &d4, in, &padded, out));
    CHECK(mcu_pad_s8(NULL, &pad, &d4, in, &padded, out) == MCU_OK);
    CHECK(out[0] == -3);

    /* transpose: not a permutation, output dims not the permuted input dims */
    const mcu_transpose_params tp = {{0, 3, 1, 2}}, tp_bad = {{0, 1, 1, 2}};
    const mcu_dims tin = {1, 2, 3, 4}, tout = {1, 4, 2, 3};
    EXPECT_ARG_ERROR(out, mcu_transpose_s8(NULL, &tp_bad, &tin, in, &tout, out));
    EXPECT_ARG_ERROR(out, mcu_transpose_s8(NULL, &tp, &tin, in, &tin, out));
    CHECK(mcu_transpose_s8(NULL, &tp, &tin, in, &tout, out) == MCU_OK);

    /* resize nearest: scale < 1, negative offset, N or C differ, an output pixel reading past the input */
    for (int32_t i = 0; i < (int32_t)sizeof(in); i++)
    {
        in[i] = (int8_t)i;
    }
    const mcu_resize_nearest_params rs = {{2, 2}, {0, 0}}, rs_zero = {{2, 0}, {0, 0}}, rs_neg = {{2, 2}, {0, -1}},
                                    rs_off = {{2, 2}, {1, 0}};
    const mcu_dims up = {1, 4, 4, 4}, up_c = {1, 4, 4, 3}, up_n = {2, 4, 4, 4}, up_far = {1, 5, 4, 4},
                   up_patch = {1, 4, 3, 4};
    EXPECT_ARG_ERROR(out, mcu_resize_nearest_s8(NULL, &rs_zero, &d4, in, &up, out));
    EXPECT_ARG_ERROR(out, mcu_resize_nearest_s8(NULL, &rs_neg, &d4, in, &up, out));
    EXPECT_ARG_ERROR(out, mcu_resize_nearest_s8(NULL, &rs, &d4, in, &up_c, out));
    EXPECT_ARG_ERROR(out, mcu_resize_nearest_s8(NULL, &rs, &d4, in, &up_n, out));
    EXPECT_ARG_ERROR(out, mcu_resize_nearest_s8(NULL, &rs, &d4, in, &up_far, out));
    EXPECT_ARG_ERROR(out, mcu_resize_nearest_s8(NULL, &rs_off, &d4, in, &up, out)); /* column (3 + 1) / 2 = 2 */
    CHECK(mcu_resize_nearest_s8(NULL, &rs, &d4, in, &up, out) == MCU_OK);
    CHECK(out[(3 * 4 + 2) * 4 + 1] == in[(1 * 2 + 1) * 4 + 1]); /* output (3, 2) is input (1, 1) */
    /* a patch starting one column into a block: output column ox reads input column (ox + 1) / 2 */
    CHECK(mcu_resize_nearest_s8(NULL, &rs_off, &d4, in, &up_patch, out) == MCU_OK);
    CHECK(out[(0 * 3 + 0) * 4] == in[0] && out[(0 * 3 + 1) * 4] == in[4] && out[(2 * 3 + 2) * 4] == in[(1 * 2 + 1) * 4]);

    /* prelu: output dims differ from the input's, slope count neither C nor 1 */
    const mcu_prelu_params pr = {0, 0, 0, 1 << 30, 1, 1 << 30, 0};
    const mcu_dims a4 = {1, 1, 1, 4}, a1 = {1, 1, 1, 1}, a3 = {1, 1, 1, 3};
    const int8_t alpha[4] = {1, 2, 3, 4};
    EXPECT_ARG_ERROR(out, mcu_prelu_s8(NULL, &pr, &d4, in, &a3, alpha, &d4, out));
    EXPECT_ARG_ERROR(out, mcu_prelu_s8(NULL, &pr, &d4, in, &a4, alpha, &d_bad, out));
    CHECK(mcu_prelu_s8(NULL, &pr, &d4, in, &a4, alpha, &d4, out) == MCU_OK);
    CHECK(mcu_prelu_s8(NULL, &pr, &d4, in, &a1, alpha, &d4, out) == MCU_OK);

    /* copy / paste region: leaves the tensor, batch not 1, channels differ, negative size */
    const mcu_dims big = {1, 4, 4, 4}, big2 = {2, 4, 4, 4}, r = {1, 2, 2, 4}, r_c = {1, 2, 2, 3}, r_neg = {1, -1, 2, 4};
    const mcu_region_params corner = {2, 2}, outside = {3, 2}, neg_at = {-1, 0};
    int8_t src[64] = {0};
    EXPECT_ARG_ERROR(out, mcu_copy_region_s8(NULL, &outside, &big, src, &r, out));
    EXPECT_ARG_ERROR(out, mcu_copy_region_s8(NULL, &neg_at, &big, src, &r, out));
    EXPECT_ARG_ERROR(out, mcu_copy_region_s8(NULL, &corner, &big2, src, &r, out));
    EXPECT_ARG_ERROR(out, mcu_copy_region_s8(NULL, &corner, &big, src, &r_c, out));
    EXPECT_ARG_ERROR(out, mcu_copy_region_s8(NULL, &corner, &big, src, &r_neg, out));
    CHECK(mcu_copy_region_s8(NULL, &corner, &big, src, &r, out) == MCU_OK);
    EXPECT_ARG_ERROR(out, mcu_paste_region_s8(NULL, &outside, &r, src, &big, out));
    EXPECT_ARG_ERROR(out, mcu_paste_region_s8(NULL, &corner, &r_c, src, &big, out));
    CHECK(mcu_paste_region_s8(NULL, &corner, &r, src, &big, out) == MCU_OK);
}

int main(void)
{
    for (int32_t i = 0; i < (int32_t)sizeof(whole); i++)
    {
        whole[i] = (int8_t)((i * 71 + 13) % 256 - 128);
    }
    negative_padding_is_a_start_offset();
    documented_errors();
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
