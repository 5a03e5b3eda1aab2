/* ethoedge_batch.c: many windows at once on a host (see ethoedge_batch.h; integer semantics:
   docs/fixedpoint.md). Shipped with ethoedge. */
#include "ethoedge_batch.h"

#include <stdlib.h>
#include <string.h>

#define B ETHOEDGE_BATCH_BLOCK

/* x86 hosts: AVX2 versions of the mat-vecs and of the W = 8 and W = 16 gate updates, compiled for
   AVX2 function by function (the rest of the library stays portable) and used when the CPU
   has it (checked at run time); the same integers as the plain loops, which every other host
   runs. ETHOEDGE_NO_SIMD at compile time leaves them out. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(ETHOEDGE_NO_SIMD)
#define ETHOEDGE_AVX2 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2")))
#else
#define ETHOEDGE_AVX2 0
#endif

struct ethoedge_batch_s {
    const ethoedge_model_t *m;
    int hid, nin, acc64;
    int16_t *w_inp;         /* H x n_inputs, row-major */
    int16_t *w_ih, *w_hh;   /* 3H x H, rows r, z, n of units 0..H-1 */
    int64_t *b_inp;         /* H */
    int64_t *b_ih, *b_hh;   /* 3H, same row order */
    int32_t *b_inp32, *b_ih32, *b_hh32; /* the same biases as int32 (acc64 = 0) */
    int32_t *p_inp, *p_ih, *p_hh; /* the rows as int16 pairs (w[2p], w[2p+1]) in int32 */
    int simd_mv, simd_update;      /* the AVX2 mat-vecs / gate update run (0: plain loops) */
};

/* element i of an accumulator array of the model's type */
static int64_t acc_at(const ethoedge_model_t *m, const void *acc, long i)
{
    return m->acc64 ? ((const int64_t *)acc)[i] : ((const int32_t *)acc)[i];
}

typedef void (*layer_fn)(const void *w, const void *b, const int16_t *x, int rows, int cols,
                         void *out, int32_t *dot, int use_dsp);

/* row-major copy of the rows x cols matrix w (in the layout of the op that multiplies it,
   layer or layer_in): column k is W e_k */
static int probe(const ethoedge_model_t *m, layer_fn layer, const void *w, int rows, int cols,
                 int16_t *out, const int *row_of)
{
    int16_t *e = calloc((size_t)cols + 2, sizeof *e);
    void *acc = malloc((size_t)rows * 8 + 8);
    int32_t *dot = malloc((size_t)rows * 4 + 4);
    void *zero = calloc((size_t)rows + 1, 8); /* a bias of zeros (int32 or int64): the pair
                                                 tiles of a DSP build need one */
    int k, r;
    if (!e || !acc || !dot || !zero) {
        free(e);
        free(acc);
        free(dot);
        free(zero);
        return -1;
    }
    for (k = 0; k < cols; ++k) {
        e[k] = 1;
        layer(w, zero, e, rows, cols, acc, dot, 0);
        for (r = 0; r < rows; ++r) {
            out[(long)row_of[r] * cols + k] = (int16_t)acc_at(m, acc, r);
        }
        e[k] = 0;
    }
    free(e);
    free(acc);
    free(dot);
    free(zero);
    return 0;
}

/* rows x cols int16 (row-major) as rows x ceil(cols / 2) int32 pairs, low half w[2p] */
static int pack_pairs(const int16_t *w, int rows, int cols, int32_t **out)
{
    const int np = (cols + 1) / 2;
    int r, p;
    *out = malloc(sizeof(int32_t) * ((size_t)rows * np + 1));
    if (!*out) {
        return -1;
    }
    for (r = 0; r < rows; ++r) {
        for (p = 0; p < np; ++p) {
            const uint16_t lo = (uint16_t)w[(long)r * cols + 2 * p];
            const uint16_t hi = 2 * p + 1 < cols ? (uint16_t)w[(long)r * cols + 2 * p + 1] : 0;
            (*out)[(long)r * np + p] = (int32_t)((uint32_t)lo | (uint32_t)hi << 16);
        }
    }
    return 0;
}

static int update8_applies(const ethoedge_model_t *m);
static int update16_applies(const ethoedge_model_t *m);

#if ETHOEDGE_AVX2
/* max over rows of |bias| + 2^15 sum |w|: a bound on |W x + bias| for any int16 x */
static int64_t row_bound(const int16_t *w, const int64_t *bias, int rows, int cols)
{
    int64_t worst = 0;
    int r, k;
    for (r = 0; r < rows; ++r) {
        int64_t s;
        if (bias[r] > ((int64_t)1 << 61) || bias[r] < -((int64_t)1 << 61)) {
            return INT64_MAX;
        }
        s = bias[r] < 0 ? -bias[r] : bias[r];
        for (k = 0; k < cols; ++k) {
            const int32_t v = w[(long)r * cols + k];
            s += (int64_t)(v < 0 ? -v : v) << 15;
        }
        worst = s > worst ? s : worst;
    }
    return worst;
}
#endif

void ethoedge_batch_free(ethoedge_batch_t *b)
{
    if (b) {
        free(b->w_inp);
        free(b->w_ih);
        free(b->w_hh);
        free(b->b_inp);
        free(b->b_ih);
        free(b->b_hh);
        free(b->b_inp32);
        free(b->b_ih32);
        free(b->b_hh32);
        free(b->p_inp);
        free(b->p_ih);
        free(b->p_hh);
        free(b);
    }
}

ethoedge_batch_t *ethoedge_batch_new(const ethoedge_model_t *m)
{
    const int h = m->hidden, nin = m->n_inputs, esz = m->word_bits == 16 ? 2 : 1;
    const int asz = m->acc64 ? 8 : 4;
    ethoedge_batch_t *b = calloc(1, sizeof *b);
    int *row_of = calloc(3 * (size_t)h + (size_t)nin + 1, sizeof(int));
    int j0, i, g, ok;
    if (!b || !row_of) {
        free(b);
        free(row_of);
        return 0;
    }
    b->m = m;
    b->hid = h;
    b->nin = nin;
    b->acc64 = m->acc64;
    b->w_inp = malloc(sizeof(int16_t) * (size_t)h * nin);
    b->w_ih = malloc(sizeof(int16_t) * 3 * (size_t)h * h);
    b->w_hh = malloc(sizeof(int16_t) * 3 * (size_t)h * h);
    b->b_inp = malloc(sizeof(int64_t) * (size_t)h);
    b->b_ih = malloc(sizeof(int64_t) * 3 * (size_t)h);
    b->b_hh = malloc(sizeof(int64_t) * 3 * (size_t)h);
    b->b_inp32 = malloc(sizeof(int32_t) * (size_t)h);
    b->b_ih32 = malloc(sizeof(int32_t) * 3 * (size_t)h);
    b->b_hh32 = malloc(sizeof(int32_t) * 3 * (size_t)h);
    ok = b->w_inp && b->w_ih && b->w_hh && b->b_inp && b->b_ih && b->b_hh && b->b_inp32
         && b->b_ih32 && b->b_hh32;
    for (i = 0; i < h; ++i) {
        row_of[i] = i;
        if (ok) {
            b->b_inp[i] = acc_at(m, m->b_inp, i);
        }
    }
    ok = ok && probe(m, m->ops->layer_in, m->w_inp, h, nin, b->w_inp, row_of) == 0;
    /* GRU rows: blocks of ETHOEDGE_GRU_BLOCK units, rows r, z, n of the block's units */
    for (j0 = 0; ok && j0 < h; j0 += ETHOEDGE_GRU_BLOCK) {
        const int u = h - j0 < ETHOEDGE_GRU_BLOCK ? h - j0 : ETHOEDGE_GRU_BLOCK;
        const long off = 3L * j0 * h * esz;
        for (g = 0; g < 3; ++g) {
            for (i = 0; i < u; ++i) {
                row_of[g * u + i] = g * h + j0 + i;
                b->b_ih[g * h + j0 + i] = acc_at(m, (const char *)m->b_ih + 3L * j0 * asz,
                                                 g * u + i);
                b->b_hh[g * h + j0 + i] = acc_at(m, (const char *)m->b_hh + 3L * j0 * asz,
                                                 g * u + i);
            }
        }
        ok = probe(m, m->ops->layer, (const char *)m->w_ih + off, 3 * u, h, b->w_ih, row_of) == 0
             && probe(m, m->ops->layer, (const char *)m->w_hh + off, 3 * u, h, b->w_hh, row_of)
                    == 0;
    }
    for (i = 0; ok && i < 3 * h; ++i) {
        b->b_ih32[i] = (int32_t)b->b_ih[i]; /* used only when acc64 = 0: then they fit */
        b->b_hh32[i] = (int32_t)b->b_hh[i];
        if (i < h) {
            b->b_inp32[i] = (int32_t)b->b_inp[i];
        }
    }
    free(row_of);
    ok = ok && pack_pairs(b->w_inp, h, nin, &b->p_inp) == 0
         && pack_pairs(b->w_ih, 3 * h, h, &b->p_ih) == 0
         && pack_pairs(b->w_hh, 3 * h, h, &b->p_hh) == 0;
    if (!ok) {
        ethoedge_batch_free(b);
        return 0;
    }
    ethoedge_batch_set_simd(b, 1);
    return b;
}

int ethoedge_batch_set_simd(ethoedge_batch_t *b, int on)
{
    const ethoedge_model_t *m = b->m;
    const int h = b->hid;
    long k;
    int mv = 0, up = 0;
#if ETHOEDGE_AVX2
    if (on && __builtin_cpu_supports("avx2")) {
        /* _mm256_madd_epi16 wraps only for two products (-2^15)(-2^15) in one pair */
        mv = 1;
        for (k = 0; mv && k < (long)h * b->nin; ++k) {
            mv = b->w_inp[k] != -32768;
        }
        for (k = 0; mv && k < 3L * h * h; ++k) {
            mv = b->w_ih[k] != -32768 && b->w_hh[k] != -32768;
        }
        /* W = 8, the update's shifts: right shifts below 63 for r * n (the 64-bit rounding),
           left shifts of the gate accumulators below 31 */
        up = update8_applies(m) && m->sh_rn <= 62 && m->sh_gx > -31 && m->sh_gh > -31;
        /* W = 16: shifts below 63 and the accumulators' bounds of the 64-bit rounding */
        if (update16_applies(m) && m->sh_gx <= 62 && m->sh_gh <= 62 && m->sh_rn <= 62) {
            up = row_bound(b->w_ih, b->b_ih, 3 * h, h) < ((int64_t)1 << 61)
                 && row_bound(b->w_hh, b->b_hh, 2 * h, h) < ((int64_t)1 << 61)
                 && row_bound(b->w_hh + 2L * h * h, b->b_hh + 2 * h, h, h) < ((int64_t)1 << 46);
        }
    }
#else
    (void)on;
    (void)h;
    (void)k;
    (void)m;
#endif
    b->simd_mv = mv;
    b->simd_update = up;
    return (mv ? 1 : 0) | (up ? 2 : 0);
}

/* out[r][.] = bias[r] + sum_k w[r][k] x[k][.] for a block of B windows, int32 accumulators
   (acc64 = 0: the exporter proved every sum fits) */
static void mv32(const int16_t *w, const int32_t *bias, const int16_t *x, int rows, int cols,
                 int32_t *out)
{
    int r, k, i;
    for (r = 0; r < rows; ++r) {
        const int16_t *wr = w + (long)r * cols;
        int32_t acc[B];
        for (i = 0; i < B; ++i) {
            acc[i] = bias[r];
        }
        for (k = 0; k < cols; ++k) {
            const int32_t wk = wr[k];
            const int16_t *xk = x + (long)k * B;
            for (i = 0; i < B; ++i) {
                acc[i] += wk * xk[i];
            }
        }
        memcpy(out + (long)r * B, acc, sizeof acc);
    }
}

/* the same with int64 accumulators; each product is exact in int32 (|w|, |x| <= 2^15) */
static void mv64(const int16_t *w, const int64_t *bias, const int16_t *x, int rows, int cols,
                 int64_t *out)
{
    int r, k, i;
    for (r = 0; r < rows; ++r) {
        const int16_t *wr = w + (long)r * cols;
        int64_t acc[B];
        for (i = 0; i < B; ++i) {
            acc[i] = bias[r];
        }
        for (k = 0; k < cols; ++k) {
            const int32_t wk = wr[k];
            const int16_t *xk = x + (long)k * B;
            for (i = 0; i < B; ++i) {
                acc[i] += (int64_t)(wk * xk[i]);
            }
        }
        memcpy(out + (long)r * B, acc, sizeof acc);
    }
}

#if ETHOEDGE_AVX2
/* xi[p][i] = the pair (x[2p][i], x[2p+1][i]) of window i (0 after an odd last column) */
AVX2_FN static void interleave_pairs(const int16_t *x, int cols, int16_t *xi)
{
    const int np = (cols + 1) / 2;
    int p, g;
    for (p = 0; p < np; ++p) {
        const int16_t *a = x + (long)(2 * p) * B;
        int16_t *o = xi + (long)p * 2 * B;
        for (g = 0; g < B; g += 16) {
            /* 64-bit chunks (0, 2, 1, 3): the in-lane unpacks then give windows in order */
            __m256i va = _mm256_loadu_si256((const __m256i *)(a + g));
            __m256i vb = 2 * p + 1 < cols ? _mm256_loadu_si256((const __m256i *)(a + B + g))
                                          : _mm256_setzero_si256();
            va = _mm256_permute4x64_epi64(va, 0xD8);
            vb = _mm256_permute4x64_epi64(vb, 0xD8);
            _mm256_storeu_si256((__m256i *)(o + 2 * g), _mm256_unpacklo_epi16(va, vb));
            _mm256_storeu_si256((__m256i *)(o + 2 * g + 16), _mm256_unpackhi_epi16(va, vb));
        }
    }
}

/* mv32 on pairs: out[r][.] = bias[r] + sum_p madd(pair p of x, pair p of row r); int32 sums
   wrap as the plain loop's would not need to (the exporter proved they fit) */
AVX2_FN static void mv32_pairs(const int32_t *wp, const int32_t *bias, const int16_t *xi,
                               int rows, int cols, int32_t *out)
{
    const int np = (cols + 1) / 2;
    int r, p, q;
    for (r = 0; r < rows; ++r) {
        const int32_t *wr = wp + (long)r * np;
        __m256i acc[B / 8];
        for (q = 0; q < B / 8; ++q) {
            acc[q] = _mm256_set1_epi32(bias[r]);
        }
        for (p = 0; p < np; ++p) {
            const __m256i w = _mm256_set1_epi32(wr[p]);
            const __m256i *xp = (const __m256i *)(xi + (long)p * 2 * B);
            for (q = 0; q < B / 8; ++q) {
                acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(_mm256_loadu_si256(xp + q), w));
            }
        }
        for (q = 0; q < B / 8; ++q) {
            _mm256_storeu_si256((__m256i *)(out + (long)r * B + 8 * q), acc[q]);
        }
    }
}

/* the same with int64 accumulators: each pair sum is exact in int32 (no weight is -2^15,
   so |w x + w' x'| <= 2 (2^15 - 1) 2^15 < 2^31), then widened */
AVX2_FN static void mv64_pairs(const int32_t *wp, const int64_t *bias, const int16_t *xi,
                               int rows, int cols, int64_t *out)
{
    const int np = (cols + 1) / 2;
    int r, p, q;
    for (r = 0; r < rows; ++r) {
        const int32_t *wr = wp + (long)r * np;
        __m256i acc[B / 4];
        for (q = 0; q < B / 4; ++q) {
            acc[q] = _mm256_set1_epi64x(bias[r]);
        }
        for (p = 0; p < np; ++p) {
            const __m256i w = _mm256_set1_epi32(wr[p]);
            const __m256i *xp = (const __m256i *)(xi + (long)p * 2 * B);
            for (q = 0; q < B / 8; ++q) {
                const __m256i d = _mm256_madd_epi16(_mm256_loadu_si256(xp + q), w);
                acc[2 * q] = _mm256_add_epi64(acc[2 * q],
                                              _mm256_cvtepi32_epi64(_mm256_castsi256_si128(d)));
                acc[2 * q + 1] = _mm256_add_epi64(
                    acc[2 * q + 1], _mm256_cvtepi32_epi64(_mm256_extracti128_si256(d, 1)));
            }
        }
        for (q = 0; q < B / 4; ++q) {
            _mm256_storeu_si256((__m256i *)(out + (long)r * B + 4 * q), acc[q]);
        }
    }
}

/* sat32(a + b) */
AVX2_FN static inline __m256i adds32_avx2(__m256i a, __m256i b)
{
    const __m256i s = _mm256_add_epi32(a, b);
    /* overflow: a and b of one sign, s of the other */
    const __m256i ovf = _mm256_andnot_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(a, s));
    const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(a, 31), _mm256_set1_epi32(INT32_MAX));
    return _mm256_blendv_epi8(s, sat, _mm256_srai_epi32(ovf, 31));
}

/* (v + rnd) >> s, s >= 0 (the rounding offset fits, as in the plain loop) */
AVX2_FN static inline __m256i rshift_avx2(__m256i v, __m256i rnd, __m128i s)
{
    return _mm256_sra_epi32(_mm256_add_epi32(v, rnd), s);
}

/* the interpolated table value of 8 lanes (act16): both table entries of a lane from one
   32-bit gather at t + i */
AVX2_FN static inline __m256i interp_avx2(__m256i pre, const int16_t *t)
{
    const __m256i u = _mm256_min_epi32(_mm256_max_epi32(pre, _mm256_set1_epi32(-32768)),
                                       _mm256_set1_epi32(32767));
    const __m256i i = _mm256_add_epi32(_mm256_srai_epi32(u, 8), _mm256_set1_epi32(128));
    const __m256i r = _mm256_and_si256(u, _mm256_set1_epi32(255));
    const __m256i g = _mm256_i32gather_epi32((const int *)(const void *)t, i, 2);
    const __m256i t0 = _mm256_srai_epi32(_mm256_slli_epi32(g, 16), 16);
    const __m256i t1 = _mm256_srai_epi32(g, 16);
    const __m256i d = _mm256_mullo_epi32(_mm256_sub_epi32(t1, t0), r);
    return _mm256_add_epi32(t0,
                            _mm256_srai_epi32(_mm256_add_epi32(d, _mm256_set1_epi32(128)), 8));
}

/* act8 of 8 lanes */
AVX2_FN static inline __m256i act8_avx2(__m256i pre, const int16_t *t)
{
    const __m256i y = _mm256_srai_epi32(
        _mm256_add_epi32(interp_avx2(pre, t), _mm256_set1_epi32(128)), 8);
    return _mm256_min_epi32(y, _mm256_set1_epi32(127));
}

/* 4 int64 lanes clipped to the int32 range (still in 64-bit lanes) */
AVX2_FN static inline __m256i clip32_64(__m256i v)
{
    const __m256i hi = _mm256_set1_epi64x(INT32_MAX), lo = _mm256_set1_epi64x(INT32_MIN);
    v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
    return _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
}

/* align64(v, s) = sat32(round_shift(v, s)) of 4 int64 lanes for 0 <= s <= 62 and
   |v| < 2^61: the arithmetic shift as a logical one of v + 2^(s-1) (0 for s = 0) + 2^62
   (rb), less 2^(62-s) (after) */
AVX2_FN static inline __m256i align64_avx2(__m256i v, __m256i rb, __m128i s, __m256i after)
{
    return clip32_64(_mm256_sub_epi64(_mm256_srl_epi64(_mm256_add_epi64(v, rb), s), after));
}

/* sat32((r * v + rnd) >> s) for 0 <= r <= 2^7, any int32 v, 0 <= s <= 62: the products in
   64-bit lanes (|r v| < 2^39), rounded as align64_avx2 does (rb = rnd + 2^62) */
AVX2_FN static inline __m256i mulshift_avx2(__m256i r, __m256i v, __m256i rb, __m128i s,
                                            __m256i after)
{
    const __m256i pe = _mm256_mul_epi32(r, v); /* lanes 0, 2, 4, 6 */
    const __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(r, 32), _mm256_srli_epi64(v, 32));
    return _mm256_blend_epi32(align64_avx2(pe, rb, s, after),
                              _mm256_slli_epi64(align64_avx2(po, rb, s, after), 32), 0xAA);
}

/* sat32(v << s), 0 < s < 31, in place over n int32 (n a multiple of 8) */
AVX2_FN static void lshift_sat_avx2(int32_t *v, long n, int s)
{
    const __m256i lim = _mm256_set1_epi32(INT32_MAX >> s), nlim = _mm256_set1_epi32(~(INT32_MAX >> s));
    const __m256i mx = _mm256_set1_epi32(INT32_MAX), mn = _mm256_set1_epi32(INT32_MIN);
    const __m128i c = _mm_cvtsi32_si128(s);
    long k;
    for (k = 0; k < n; k += 8) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(v + k));
        __m256i y = _mm256_sll_epi32(x, c);
        y = _mm256_blendv_epi8(y, mx, _mm256_cmpgt_epi32(x, lim));
        y = _mm256_blendv_epi8(y, mn, _mm256_cmpgt_epi32(nlim, x));
        _mm256_storeu_si256((__m256i *)(v + k), y);
    }
}

/* update8 (below) with 8 windows per instruction */
AVX2_FN static void update8_avx2(const ethoedge_model_t *m, int32_t *gx, int32_t *gh, int h,
                                 int16_t *hs)
{
    const int sgx = m->sh_gx > 0 ? m->sh_gx : 0, sgh = m->sh_gh > 0 ? m->sh_gh : 0;
    const int srn = m->sh_rn, snh = m->sh_n_to_h;
    const __m256i rgx = _mm256_set1_epi32(sgx > 0 ? (int32_t)1 << (sgx - 1) : 0);
    const __m256i rgh = _mm256_set1_epi32(sgh > 0 ? (int32_t)1 << (sgh - 1) : 0);
    const __m256i rnh = _mm256_set1_epi32(snh > 0 ? (int32_t)1 << (snh - 1) : 0);
    const __m256i rbn = _mm256_set1_epi64x((srn > 0 ? (int64_t)1 << (srn - 1) : 0)
                                           + ((int64_t)1 << 62));
    const __m256i after = _mm256_set1_epi64x((int64_t)1 << (62 - srn));
    const __m128i cgx = _mm_cvtsi32_si128(sgx), cgh = _mm_cvtsi32_si128(sgh);
    const __m128i crn = _mm_cvtsi32_si128(srn), cnh = _mm_cvtsi32_si128(snh);
    const __m256i c128 = _mm256_set1_epi32(128), c64 = _mm256_set1_epi32(64);
    int j, i;
    if (m->sh_gx < 0) {
        lshift_sat_avx2(gx, 3L * h * B, -m->sh_gx);
    }
    if (m->sh_gh < 0) {
        lshift_sat_avx2(gh, 2L * h * B, -m->sh_gh);
    }
    for (j = 0; j < h; ++j) {
        const int32_t *xr = gx + (long)j * B, *xz = gx + (long)(h + j) * B;
        const int32_t *xn = gx + (long)(2 * h + j) * B;
        const int32_t *hr = gh + (long)j * B, *hz = gh + (long)(h + j) * B;
        const int32_t *hn = gh + (long)(2 * h + j) * B;
        int16_t *hj = hs + (long)j * B;
        for (i = 0; i < B; i += 8) {
#define LD(p) _mm256_loadu_si256((const __m256i *)((p) + i))
            const __m256i r = act8_avx2(adds32_avx2(rshift_avx2(LD(xr), rgx, cgx),
                                                    rshift_avx2(LD(hr), rgh, cgh)),
                                        ethoedge_sigmoid_q15);
            const __m256i z = act8_avx2(adds32_avx2(rshift_avx2(LD(xz), rgx, cgx),
                                                    rshift_avx2(LD(hz), rgh, cgh)),
                                        ethoedge_sigmoid_q15);
            const __m256i rn = mulshift_avx2(r, LD(hn), rbn, crn, after);
            const __m256i n = act8_avx2(adds32_avx2(rshift_avx2(LD(xn), rgx, cgx), rn),
                                        ethoedge_tanh_q15);
#undef LD
            const __m256i hv = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(hj + i)));
            __m256i v = _mm256_add_epi32(
                _mm256_mullo_epi32(_mm256_sub_epi32(c128, z), rshift_avx2(n, rnh, cnh)),
                _mm256_mullo_epi32(z, hv));
            v = _mm256_srai_epi32(_mm256_add_epi32(v, c64), 7);
            v = _mm256_permute4x64_epi64(_mm256_packs_epi32(v, v), 0xD8);
            _mm_storeu_si128((__m128i *)(hj + i), _mm256_castsi256_si128(v));
        }
    }
}

/* 8 int32 from the low halves of the 64-bit lanes of a (windows 0-3) and b (4-7) */
AVX2_FN static inline __m256i pack64_avx2(__m256i a, __m256i b)
{
    const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    return _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(a, idx),
                                     _mm256_permutevar8x32_epi32(b, idx), 0x20);
}

/* align64 of the 8 int64 at p */
AVX2_FN static inline __m256i align8x64(const int64_t *p, __m256i rb, __m128i s, __m256i after)
{
    return pack64_avx2(align64_avx2(_mm256_loadu_si256((const __m256i *)p), rb, s, after),
                       align64_avx2(_mm256_loadu_si256((const __m256i *)(p + 4)), rb, s, after));
}

/* r v for 0 <= r < 2^31 (int32 lanes, r of window k in lane k) and int64 v (4 lanes), the
   low and the high 32 bits of v multiplied apart: exact where |r v| < 2^63 */
AVX2_FN static inline __m256i mul_r64(__m256i r64, __m256i v)
{
    const __m256i lo = _mm256_mul_epu32(r64, v);
    const __m256i hi = _mm256_mul_epi32(r64, _mm256_srli_epi64(v, 32));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32));
}

/* update16 (below) with 8 windows per instruction; set_simd checked the bounds the 64-bit
   rounding needs (every gate accumulator |.| < 2^61, r * (W_hn h + b_hn) < 2^61) */
AVX2_FN static void update16_avx2(const ethoedge_model_t *m, const int64_t *gx, const int64_t *gh,
                                  int h, int16_t *hs)
{
    const int sgx = m->sh_gx, sgh = m->sh_gh, srn = m->sh_rn, snh = m->sh_n_to_h;
    const __m256i big = _mm256_set1_epi64x((int64_t)1 << 62);
    const __m256i rbx = _mm256_add_epi64(big, _mm256_set1_epi64x((int64_t)1 << (sgx - 1)));
    const __m256i rbh = _mm256_add_epi64(big, _mm256_set1_epi64x((int64_t)1 << (sgh - 1)));
    const __m256i rbn = _mm256_add_epi64(big, _mm256_set1_epi64x((int64_t)1 << (srn - 1)));
    const __m256i ax = _mm256_set1_epi64x((int64_t)1 << (62 - sgx));
    const __m256i ah = _mm256_set1_epi64x((int64_t)1 << (62 - sgh));
    const __m256i an = _mm256_set1_epi64x((int64_t)1 << (62 - srn));
    const __m128i cx = _mm_cvtsi32_si128(sgx), ch = _mm_cvtsi32_si128(sgh);
    const __m128i cn = _mm_cvtsi32_si128(srn), cnh = _mm_cvtsi32_si128(snh);
    const __m256i rnh = _mm256_set1_epi32(snh > 0 ? (int32_t)1 << (snh - 1) : 0);
    const __m256i one = _mm256_set1_epi32(32768), half = _mm256_set1_epi32(16384);
    int j, i;
    for (j = 0; j < h; ++j) {
        const int64_t *xr = gx + (long)j * B, *xz = gx + (long)(h + j) * B;
        const int64_t *xn = gx + (long)(2 * h + j) * B;
        const int64_t *hr = gh + (long)j * B, *hz = gh + (long)(h + j) * B;
        const int64_t *hn = gh + (long)(2 * h + j) * B;
        int16_t *hj = hs + (long)j * B;
        for (i = 0; i < B; i += 8) {
            const __m256i r = interp_avx2(adds32_avx2(align8x64(xr + i, rbx, cx, ax),
                                                      align8x64(hr + i, rbh, ch, ah)),
                                          ethoedge_sigmoid_q15);
            const __m256i z = interp_avx2(adds32_avx2(align8x64(xz + i, rbx, cx, ax),
                                                      align8x64(hz + i, rbh, ch, ah)),
                                          ethoedge_sigmoid_q15);
            const __m256i r0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(r));
            const __m256i r1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(r, 1));
            const __m256i p0 = mul_r64(r0, _mm256_loadu_si256((const __m256i *)(hn + i)));
            const __m256i p1 = mul_r64(r1, _mm256_loadu_si256((const __m256i *)(hn + i + 4)));
            const __m256i rn = pack64_avx2(align64_avx2(p0, rbn, cn, an),
                                           align64_avx2(p1, rbn, cn, an));
            const __m256i n = interp_avx2(adds32_avx2(align8x64(xn + i, rbx, cx, ax), rn),
                                          ethoedge_tanh_q15);
            const __m256i hv = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(hj + i)));
            __m256i v = _mm256_add_epi32(
                _mm256_mullo_epi32(_mm256_sub_epi32(one, z), rshift_avx2(n, rnh, cnh)),
                _mm256_mullo_epi32(z, hv));
            v = _mm256_srai_epi32(_mm256_add_epi32(v, half), 15);
            v = _mm256_permute4x64_epi64(_mm256_packs_epi32(v, v), 0xD8);
            _mm_storeu_si128((__m128i *)(hj + i), _mm256_castsi256_si128(v));
        }
    }
}
#endif

/* out = W x + bias over a block: the AVX2 pairs (wp, with xi as scratch) where they run */
static void mv(const ethoedge_batch_t *b, const int16_t *w, const int32_t *wp,
               const int32_t *b32, const int64_t *b64, const int16_t *x, int rows, int cols,
               void *out, int16_t *xi)
{
#if ETHOEDGE_AVX2
    if (b->simd_mv) {
        interleave_pairs(x, cols, xi);
        if (b->acc64) {
            mv64_pairs(wp, b64, xi, rows, cols, (int64_t *)out);
        } else {
            mv32_pairs(wp, b32, xi, rows, cols, (int32_t *)out);
        }
        return;
    }
#else
    (void)wp;
    (void)xi;
#endif
    if (b->acc64) {
        mv64(w, b64, x, rows, cols, (int64_t *)out);
    } else {
        mv32(w, b32, x, rows, cols, (int32_t *)out);
    }
}

/* requant(acc, s, W) with relu: clip(round_shift(acc, s), 0, 2^(W-1) - 1), over rows x B */
static void requant_relu(const ethoedge_batch_t *b, const void *acc, long n, int s, int w,
                         int16_t *out)
{
    const int64_t top = ((int64_t)1 << (w - 1)) - 1;
    long i;
    for (i = 0; i < n; ++i) {
        const int64_t v = ethoedge_round_shift64(acc_at(b->m, acc, i), s);
        out[i] = (int16_t)(v > top ? top : v < 0 ? 0 : v);
    }
}

/* act() at W = 8 (docs/fixedpoint.md): sat16(pre) as the Q3.12 table input, interpolated,
   rounded to 7 fraction bits; only the top end can exceed the 8-bit range */
static inline int32_t act8(int32_t pre, const int16_t *t)
{
    const int32_t u = pre > 32767 ? 32767 : pre < -32768 ? -32768 : pre;
    const int32_t i = (u >> 8) + 128, r = u & 255;
    const int32_t t0 = t[i];
    int32_t y = t0 + (((t[i + 1] - t0) * r + 128) >> 8);
    y = (y + 128) >> 8;
    return y > 127 ? 127 : y;
}

static inline int32_t add_sat32(int32_t a, int32_t b)
{
    return ethoedge_sat32((int64_t)a + b);
}

/* whether the W = 8 int32 gate update below applies: the case of the library's fast pass
   (right shifts or 0 for r * n and n; the gate accumulators may be left-shifted) */
static int update8_applies(const ethoedge_model_t *m)
{
    return m->word_bits == 8 && !m->acc64 && m->sh_rn >= 0 && m->sh_n_to_h >= 0;
}

/* The GRU gate update of every unit for a block of B windows, in place on hs [unit][window]:
   the contract term by term, as the library's W = 8 pass (ethoedge_gru_update32). With
   0 <= z <= 2^7 and |align(n)|, |h| <= 2^7 the state sum is exact in int32 and the rounded
   result needs no saturation. */
static void update8(const ethoedge_model_t *m, int32_t *gx, int32_t *gh, int h, int16_t *hs)
{
    const int sgx = m->sh_gx > 0 ? m->sh_gx : 0, sgh = m->sh_gh > 0 ? m->sh_gh : 0;
    const int srn = m->sh_rn, snh = m->sh_n_to_h;
    const int32_t rgx = sgx > 0 ? (int32_t)1 << (sgx - 1) : 0;
    const int32_t rgh = sgh > 0 ? (int32_t)1 << (sgh - 1) : 0;
    const int32_t rnh = snh > 0 ? (int32_t)1 << (snh - 1) : 0;
    const int64_t rrn = srn > 0 ? (int64_t)1 << (srn - 1) : 0;
    long k;
    int j, i;
    /* left shifts of the gate accumulators first, in place, with their saturation (align);
       the n rows of gh enter r * n unshifted */
    if (m->sh_gx < 0) {
        for (k = 0; k < 3L * h * B; ++k) {
            gx[k] = ethoedge_align32(gx[k], m->sh_gx);
        }
    }
    if (m->sh_gh < 0) {
        for (k = 0; k < 2L * h * B; ++k) {
            gh[k] = ethoedge_align32(gh[k], m->sh_gh);
        }
    }
    for (j = 0; j < h; ++j) {
        const int32_t *xr = gx + (long)j * B, *xz = gx + (long)(h + j) * B;
        const int32_t *xn = gx + (long)(2 * h + j) * B;
        const int32_t *hr = gh + (long)j * B, *hz = gh + (long)(h + j) * B;
        const int32_t *hn = gh + (long)(2 * h + j) * B;
        int16_t *hj = hs + (long)j * B;
        for (i = 0; i < B; ++i) {
            const int32_t r = act8(add_sat32((xr[i] + rgx) >> sgx, (hr[i] + rgh) >> sgh),
                                   ethoedge_sigmoid_q15);
            const int32_t z = act8(add_sat32((xz[i] + rgx) >> sgx, (hz[i] + rgh) >> sgh),
                                   ethoedge_sigmoid_q15);
            const int32_t rn = ethoedge_sat32(((int64_t)r * hn[i] + rrn) >> srn);
            const int32_t n = act8(add_sat32((xn[i] + rgx) >> sgx, rn), ethoedge_tanh_q15);
            const int32_t v = (128 - z) * ((n + rnh) >> snh) + z * hj[i];
            hj[i] = (int16_t)((v + 64) >> 7);
        }
    }
}

/* act() at W = 16: the interpolated table value itself (15 fraction bits, within int16) */
static inline int32_t act16(int32_t pre, const int16_t *t)
{
    const int32_t u = pre > 32767 ? 32767 : pre < -32768 ? -32768 : pre;
    const int32_t i = (u >> 8) + 128, r = u & 255;
    const int32_t t0 = t[i];
    return t0 + (((t[i + 1] - t0) * r + 128) >> 8);
}

/* whether the W = 16 int64 gate update below applies: the case of the library's fast pass */
static int update16_applies(const ethoedge_model_t *m)
{
    return m->word_bits == 16 && m->acc64 && m->sh_gx > 0 && m->sh_gx < 64 && m->sh_gh > 0
           && m->sh_gh < 64 && m->sh_rn > 0 && m->sh_rn < 64 && m->sh_n_to_h >= 0;
}

/* The same for W = 16 (int64 accumulators, as ethoedge_gru_update64): the state sum
   (2^15 - z) align(n) + z h is a convex combination, |.| <= 2^30, exact in int32. */
static void update16(const ethoedge_model_t *m, const int64_t *gx, const int64_t *gh, int h,
                     int16_t *hs)
{
    const int sgx = m->sh_gx, sgh = m->sh_gh, srn = m->sh_rn, snh = m->sh_n_to_h;
    const int32_t rnh = snh > 0 ? (int32_t)1 << (snh - 1) : 0;
    int j, i;
    for (j = 0; j < h; ++j) {
        const int64_t *xr = gx + (long)j * B, *xz = gx + (long)(h + j) * B;
        const int64_t *xn = gx + (long)(2 * h + j) * B;
        const int64_t *hr = gh + (long)j * B, *hz = gh + (long)(h + j) * B;
        const int64_t *hn = gh + (long)(2 * h + j) * B;
        int16_t *hj = hs + (long)j * B;
        for (i = 0; i < B; ++i) {
            const int32_t r = act16(
                add_sat32(ethoedge_align64(xr[i], sgx), ethoedge_align64(hr[i], sgh)),
                ethoedge_sigmoid_q15);
            const int32_t z = act16(
                add_sat32(ethoedge_align64(xz[i], sgx), ethoedge_align64(hz[i], sgh)),
                ethoedge_sigmoid_q15);
            const int32_t rn = ethoedge_align64((int64_t)r * hn[i], srn);
            const int32_t n = act16(add_sat32(ethoedge_align64(xn[i], sgx), rn),
                                    ethoedge_tanh_q15);
            const int32_t v = (32768 - z) * ((n + rnh) >> snh) + z * hj[i];
            hj[i] = (int16_t)((v + 16384) >> 15);
        }
    }
}

int ethoedge_classify_batch(const ethoedge_batch_t *b, int64_t n, int n_samples,
                            const int16_t *x, int32_t *scores)
{
    const ethoedge_model_t *m = b->m;
    const int h = b->hid, nin = b->nin, c = m->n_classes, mh = m->mlp_hidden;
    const int asz = b->acc64 ? 8 : 4, w = m->word_bits;
    const int nw = h > mh ? h : mh, na = (mh > c ? mh : c) + 3 * 2 * h;
    int16_t *xin = malloc(sizeof(int16_t) * 6 * B);
    int16_t *lp = malloc(sizeof(int16_t) * 3 * B);
    int16_t *a = malloc(sizeof(int16_t) * (size_t)h * B);
    int16_t *hs = malloc(sizeof(int16_t) * (size_t)h * B);
    char *gx = malloc((size_t)asz * 3 * h * B);
    char *gh = malloc((size_t)asz * 3 * h * B);
    char *ga = malloc((size_t)asz * 6 * h + 16);
    int16_t *hw = malloc(sizeof(int16_t) * ((size_t)nw + 2) * 3);
    void *wacc = malloc((size_t)8 * na);
    int32_t *wdot = malloc(sizeof(int32_t) * (size_t)na);
    int16_t *xi = malloc(sizeof(int16_t) * 2 * B * (((size_t)(h > nin ? h : nin) + 1) / 2));
    const int fast8 = update8_applies(m), fast16 = update16_applies(m);
    int64_t i0;
    int rc = 0;
    if (!xin || !lp || !a || !hs || !gx || !gh || !ga || !hw || !wacc || !wdot || !xi) {
        rc = -1;
        goto done;
    }
    for (i0 = 0; i0 < n; i0 += B) {
        const int nb = n - i0 < B ? (int)(n - i0) : B;
        int t, i, j, k;
        memset(hs, 0, sizeof(int16_t) * (size_t)h * B);
        for (t = 0; t < n_samples; ++t) {
            /* input stage (as ethoedge_step), inputs [input][window] */
            for (i = 0; i < B; ++i) {
                const int16_t *s = i < nb ? x + ((i0 + i) * n_samples + t) * 3 : 0;
                for (k = 0; k < 3; ++k) {
                    const int16_t v = s ? s[k] : 0;
                    if (m->input_stage != 0) {
                        const int sk = m->static_shift;
                        int32_t d;
                        if (t == 0) {
                            lp[3 * i + k] = v;
                        } else {
                            d = (int32_t)v - lp[3 * i + k];
                            lp[3 * i + k] = (int16_t)(lp[3 * i + k] + ((d + (1 << (sk - 1))) >> sk));
                        }
                        d = (int32_t)v - lp[3 * i + k];
                        xin[k * B + i] = (int16_t)(d > 32767 ? 32767 : d < -32768 ? -32768 : d);
                        if (m->input_stage == 2) {
                            xin[(3 + k) * B + i] = lp[3 * i + k];
                        }
                    } else {
                        xin[k * B + i] = v;
                    }
                }
            }
            /* a = relu(W_in' x + b_in') */
            mv(b, b->w_inp, b->p_inp, b->b_inp32, b->b_inp, xin, h, nin, gx, xi);
            requant_relu(b, gx, (long)h * B, m->sh_a, w, a);
            /* gate accumulators of every unit, then the library's gate update per window */
            mv(b, b->w_ih, b->p_ih, b->b_ih32, b->b_ih, a, 3 * h, h, gx, xi);
            mv(b, b->w_hh, b->p_hh, b->b_hh32, b->b_hh, hs, 3 * h, h, gh, xi);
#if ETHOEDGE_AVX2
            if (fast8 && b->simd_update) {
                update8_avx2(m, (int32_t *)gx, (int32_t *)gh, h, hs);
                continue;
            }
            if (fast16 && b->simd_update) {
                update16_avx2(m, (const int64_t *)gx, (const int64_t *)gh, h, hs);
                continue;
            }
#endif
            if (fast8) {
                update8(m, (int32_t *)gx, (int32_t *)gh, h, hs);
                continue;
            }
            if (fast16) {
                update16(m, (const int64_t *)gx, (const int64_t *)gh, h, hs);
                continue;
            }
            for (i = 0; i < nb; ++i) {
                char *px = ga, *ph = ga + (size_t)asz * 3 * h;
                int16_t *ho = hw, *hn = hw + nw + 2;
                for (j = 0; j < 3 * h; ++j) {
                    memcpy(px + (size_t)asz * j, gx + (size_t)asz * ((long)j * B + i), asz);
                    memcpy(ph + (size_t)asz * j, gh + (size_t)asz * ((long)j * B + i), asz);
                }
                for (j = 0; j < h; ++j) {
                    ho[j] = hs[(long)j * B + i];
                }
                m->ops->update(m, px, ph, h, ho, hn);
                for (j = 0; j < h; ++j) {
                    hs[(long)j * B + i] = hn[j];
                }
            }
        }
        for (i = 0; i < nb; ++i) {
            int16_t *hv = hw, *wa = hw + nw + 2, *whn = hw + 2 * (nw + 2);
            ethoedge_work_t work;
            work.a = wa;
            work.hn = whn;
            work.acc = wacc;
            work.dot = wdot;
            for (j = 0; j < h; ++j) {
                hv[j] = hs[(long)j * B + i];
            }
            ethoedge_head(m, hv, scores + (i0 + i) * c, &work);
        }
    }
done:
    free(xin);
    free(lp);
    free(a);
    free(hs);
    free(gx);
    free(gh);
    free(ga);
    free(hw);
    free(wacc);
    free(wdot);
    free(xi);
    return rc;
}
