/* ethoedge_batch.c: many windows at once on a host (see ethoedge_batch.h; integer semantics:
   docs/fixedpoint.md). Shipped with ethoedge. */
#include "ethoedge_batch.h"

#include <stdlib.h>
#include <string.h>

#define B ETHOEDGE_BATCH_BLOCK

struct ethoedge_batch_s {
    const ethoedge_model_t *m;
    int hid, nin, acc64;
    int16_t *w_inp;         /* H x n_inputs, row-major */
    int16_t *w_ih, *w_hh;   /* 3H x H, rows r, z, n of units 0..H-1 */
    int64_t *b_inp;         /* H */
    int64_t *b_ih, *b_hh;   /* 3H, same row order */
    int32_t *b_inp32, *b_ih32, *b_hh32; /* the same biases as int32 (acc64 = 0) */
};

/* element i of an accumulator array of the model's type */
static int64_t acc_at(const ethoedge_model_t *m, const void *acc, long i)
{
    return m->acc64 ? ((const int64_t *)acc)[i] : ((const int32_t *)acc)[i];
}

/* row-major copy of the rows x cols matrix w (kernel layout): column k is W e_k */
static int probe(const ethoedge_model_t *m, const void *w, int rows, int cols, int16_t *out,
                 const int *row_of)
{
    int16_t *e = calloc((size_t)cols + 2, sizeof *e);
    void *acc = malloc((size_t)rows * 8 + 8);
    int32_t *dot = malloc((size_t)rows * 4 + 4);
    int k, r;
    if (!e || !acc || !dot) {
        free(e);
        free(acc);
        free(dot);
        return -1;
    }
    for (k = 0; k < cols; ++k) {
        e[k] = 1;
        m->ops->layer(w, 0, e, rows, cols, acc, dot, 0);
        for (r = 0; r < rows; ++r) {
            out[(long)row_of[r] * cols + k] = (int16_t)acc_at(m, acc, r);
        }
        e[k] = 0;
    }
    free(e);
    free(acc);
    free(dot);
    return 0;
}

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
    ok = ok && probe(m, m->w_inp, h, nin, b->w_inp, row_of) == 0;
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
        ok = probe(m, (const char *)m->w_ih + off, 3 * u, h, b->w_ih, row_of) == 0
             && probe(m, (const char *)m->w_hh + off, 3 * u, h, b->w_hh, row_of) == 0;
    }
    for (i = 0; ok && i < 3 * h; ++i) {
        b->b_ih32[i] = (int32_t)b->b_ih[i]; /* used only when acc64 = 0: then they fit */
        b->b_hh32[i] = (int32_t)b->b_hh[i];
        if (i < h) {
            b->b_inp32[i] = (int32_t)b->b_inp[i];
        }
    }
    free(row_of);
    if (!ok) {
        ethoedge_batch_free(b);
        return 0;
    }
    return b;
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

static void mv(const ethoedge_batch_t *b, const int16_t *w, const int32_t *b32,
               const int64_t *b64, const int16_t *x, int rows, int cols, void *out)
{
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
    const int fast8 = update8_applies(m), fast16 = update16_applies(m);
    int64_t i0;
    int rc = 0;
    if (!xin || !lp || !a || !hs || !gx || !gh || !ga || !hw || !wacc || !wdot) {
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
            mv(b, b->w_inp, b->b_inp32, b->b_inp, xin, h, nin, gx);
            requant_relu(b, gx, (long)h * B, m->sh_a, w, a);
            /* gate accumulators of every unit, then the library's gate update per window */
            mv(b, b->w_ih, b->b_ih32, b->b_ih, a, 3 * h, h, gx);
            mv(b, b->w_hh, b->b_hh32, b->b_hh, hs, 3 * h, h, gh);
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
    return rc;
}
