/* ethoedge_kernels.h: the integer kernels of the ethoedge GRU student (shipped with ethoedge;
   integer semantics: docs/fixedpoint.md). One copy serves every exported model of a firmware:
   a model file holds only its weights, shifts and sizes in a const ethoedge_model_t and calls
   these kernels. No malloc, no recursion, no libm, no stdio.

   Each kernel has a portable C99 version and an Armv7E-M DSP version (SMLAD/SMLALD/SXTB16,
   chosen at compile time by __ARM_FEATURE_DSP unless ETHOEDGE_NO_DSP is defined, and at run
   time by the model's use_dsp flag). Both give the same integers.

   Weight layout (ethoedge.export.emit.tile_matrix): rows in tiles of R (4 at W = 8, 2 at
   W = 16); inside a tile, for each complete group of 4 columns the R rows' groups one after
   the other (W = 8: columns 0, 2, 1, 3 inside a group, for SXTB16), then the remaining
   columns of the R rows row by row; rows after the last complete tile row by row (W = 8:
   complete groups of 4 in the order 0, 2, 1, 3). GRU rows are in blocks of
   ETHOEDGE_GRU_BLOCK units: rows r, z, n of units j0..j0+u-1, block after block. A W = 8
   model whose layer op is ethoedge_layer_s8_pairs stores its GRU, MLP and output matrices in
   the pair layout instead (two rows per weight word, see that op). */
#ifndef ETHOEDGE_KERNELS_H
#define ETHOEDGE_KERNELS_H

#include <stdint.h>

#define ETHOEDGE_KERNELS_VERSION 7
#define ETHOEDGE_GRU_BLOCK 8 /* GRU units whose gate rows are computed together */

/* The integer contract shifts negative values arithmetically (round_shift, act). C99 leaves
   this implementation-defined: refuse a compiler that does otherwise. */
typedef char ethoedge_arithmetic_right_shift_check[((-1) >> 1) == -1 ? 1 : -1];
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ethoedge kernels read int8/int16 weights as 32-bit words: little-endian only"
#endif
#endif

#if defined(__GNUC__)
#define ETHOEDGE_ALIGN4 __attribute__((aligned(4)))
#else
#define ETHOEDGE_ALIGN4
#endif

/* 1 where the fused GRU ops (ethoedge_gru_s8_pairs16_rshift, _lshift and the pairs32 twins)
   run their own passes (an Armv7E-M build with GCC's Thumb-2 inline assembly)
   and never call the model's update op: a model naming one of them then leaves its update op
   out (ETHOEDGE_UNLESS_FUSED gives 0), so that the linker drops it. Elsewhere those ops run
   the blocks with the update they stand for, named in the kernels, so a model file and kernels
   built with different flags still agree. */
#if defined(__ARM_FEATURE_DSP) && !defined(ETHOEDGE_NO_DSP) && defined(__GNUC__) \
    && defined(__thumb2__)
#define ETHOEDGE_GRU_FUSED 1
#define ETHOEDGE_UNLESS_FUSED(fn) 0
#else
#define ETHOEDGE_GRU_FUSED 0
#define ETHOEDGE_UNLESS_FUSED(fn) fn
#endif

typedef struct ethoedge_model_s ethoedge_model_t;
struct ethoedge_work_s;

/* The kernels of one model, chosen by the exporter: one of the general sets below, or (W = 8
   with int32 accumulators) the specialised op functions its sizes and shifts allow, in a set
   of the model's own. A model links only the functions it names, so a firmware carries only
   the kernels its models use. */
typedef struct {
    /* out = W x + b (rows accumulators, int32_t or int64_t); dot: int32 scratch or 0 */
    void (*layer)(const void *w, const void *b, const int16_t *x, int rows, int cols, void *out,
                  int32_t *dot, int use_dsp);
    void (*requant)(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                    int32_t *out32);
    /* 0 in the table of a model whose gru op is fused where ETHOEDGE_GRU_FUSED is 1 */
    void (*update)(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                   const int16_t *h, int16_t *hn);
    /* the input layer's out = W x + b (as layer; a kernel for its 3 or 6 columns) */
    void (*layer_in)(const void *w, const void *b, const int16_t *x, int rows, int cols,
                     void *out, int32_t *dot, int use_dsp);
    /* the GRU of one step on the input layer's output a: h (H) updated */
    void (*gru)(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                const struct ethoedge_work_s *work);
} ethoedge_ops_t;

extern const ethoedge_ops_t ethoedge_ops_s8;      /* W = 8, int32 accumulators */
extern const ethoedge_ops_t ethoedge_ops_s8_wide; /* W = 8, int64 accumulators */
extern const ethoedge_ops_t ethoedge_ops_s16;     /* W = 16, int64 accumulators */

/* The op functions of those sets (any sizes and shifts, any alignment) ... */
void ethoedge_layer_s8(const void *w, const void *b, const int16_t *x, int rows, int cols,
                       void *out, int32_t *dot, int use_dsp);
void ethoedge_layer_s8_wide(const void *w, const void *b, const int16_t *x, int rows, int cols,
                            void *out, int32_t *dot, int use_dsp);
void ethoedge_layer_s16(const void *w, const void *b, const int16_t *x, int rows, int cols,
                        void *out, int32_t *dot, int use_dsp);
void ethoedge_requant_32(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                         int32_t *out32);
void ethoedge_requant_64(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                         int32_t *out32);
void ethoedge_update_32(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                        const int16_t *h, int16_t *hn);
void ethoedge_update_64(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                        const int16_t *h, int16_t *hn);
/* the GRU in blocks of ETHOEDGE_GRU_BLOCK units, by the model's layer and update ops */
void ethoedge_gru_blocks(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                         const struct ethoedge_work_s *work);
/* ... and the specialised W = 8, int32 ones, each the same integers as its general twin
   where its precondition holds (the exporter checks it):
   - layer_s8_tiles: rows a multiple of 4, w and x word-aligned (exported arrays and the
     generated buffers are), use_dsp = 1 (SMLAD tiles only, whatever use_dsp says, in a DSP
     build; the general layer elsewhere);
   - layer_s8_in3, layer_s8_in6 (input layers of 3 and 6 columns): the same with a bias and
     cols = 3 (x any int16 address) or 6 (x word-aligned, as ethoedge_step's is);
   - layer_s8_pairs: w in the pair layout (ethoedge.export.emit.pair_matrix: two rows per
     weight word, halfwords 256 w_b + w_a), rows a multiple of 4, cols even, and
     |W_b x + b_b| < 2^23 for the second row b of every pair and every x with |x| <= 128
     (the exporter proves it from the weights and the biases); in a DSP build also a bias,
     cols a multiple of 8 and w, x, b, out word-aligned (SMLAD pair tiles, whatever use_dsp
     says; plain C elsewhere);
   - layer_s8_pairs16: the same with cols a multiple of 16 (its loop takes 16 columns at a
     time);
   - layer_s8_pairs32: the same with cols = 32 (the 32 columns of a tile without a loop);
   - requant_32_rshift: s > 0;
   - update_32_fast: W = 8, sh_rn >= 0, sh_n_to_h >= 0 (sh_gx, sh_gh of any sign),
     u <= ETHOEDGE_GRU_BLOCK (as ethoedge_gru_blocks calls it);
   - update_32_rshift: the same with sh_gx >= 0 and sh_gh >= 0;
   - update_32_lshift: as update_32_fast, and sh_gx, sh_gh >= -30 with no left shift of a
     gate accumulator saturating: |v| 2^k < 2^31 for every gx value shifted left by
     k = -sh_gx and every gh value of the rows r and z shifted left by k = -sh_gh (the
     exporter proves it from the weights and the biases); on the M4 the shifts then run
     inside the gate passes, without the saturating copy;
   - gru_s8_pairs16_rshift, gru_s8_pairs16_lshift, gru_s8_pairs32_rshift,
     gru_s8_pairs32_lshift: the GRU of the layer layer_s8_pairs16 (or layer_s8_pairs32) with
     the update update_32_rshift (or update_32_lshift; their preconditions), 8 <= sh_rn <= 32
     and sh_n_to_h = 0 (so that sh_gh = sh_rn - 7 > 0: the lshift ones shift only the gx
     values left, by one LSL each, and need sh_gh >= 0): on the M4 the pair tiles and the gate
     passes of every block in one function, without a call per op and block
     (ethoedge_gru_blocks elsewhere);
   and the specialised int64 ones (W = 16):
   - requant_64_rshift: 0 < s < 32 and (v + 2^(s-1)) >> s within int32 for every
     accumulator v (|v| + 2^(s-1) < 2^(31+s): the exporter proves it from W, the sizes and
     the biases);
   - update_64_rshift: W = 16, 0 < sh_gx < 32, 0 < sh_gh < 32, 32 <= sh_rn < 64,
     sh_n_to_h >= 0, and no align() of the gate values saturates: |v| + 2^(s-1) < 2^(31+s)
     for every gate accumulator v and its shift s, and |r v_n| + 2^(sh_rn-1) < 2^63 (the
     exporter proves it from W, H and the biases). */
void ethoedge_layer_s8_tiles(const void *w, const void *b, const int16_t *x, int rows, int cols,
                             void *out, int32_t *dot, int use_dsp);
void ethoedge_layer_s8_pairs(const void *w, const void *b, const int16_t *x, int rows, int cols,
                             void *out, int32_t *dot, int use_dsp);
void ethoedge_layer_s8_pairs16(const void *w, const void *b, const int16_t *x, int rows, int cols,
                               void *out, int32_t *dot, int use_dsp);
void ethoedge_layer_s8_pairs32(const void *w, const void *b, const int16_t *x, int rows, int cols,
                               void *out, int32_t *dot, int use_dsp);
void ethoedge_layer_s8_in3(const void *w, const void *b, const int16_t *x, int rows, int cols,
                           void *out, int32_t *dot, int use_dsp);
void ethoedge_layer_s8_in6(const void *w, const void *b, const int16_t *x, int rows, int cols,
                           void *out, int32_t *dot, int use_dsp);
void ethoedge_requant_32_rshift(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                                int32_t *out32);
void ethoedge_update_32_fast(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                             const int16_t *h, int16_t *hn);
void ethoedge_update_32_rshift(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                               const int16_t *h, int16_t *hn);
void ethoedge_update_32_lshift(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                               const int16_t *h, int16_t *hn);
void ethoedge_gru_s8_pairs16_rshift(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                                    const struct ethoedge_work_s *work);
void ethoedge_gru_s8_pairs16_lshift(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                                    const struct ethoedge_work_s *work);
void ethoedge_gru_s8_pairs32_rshift(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                                    const struct ethoedge_work_s *work);
void ethoedge_gru_s8_pairs32_lshift(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                                    const struct ethoedge_work_s *work);
void ethoedge_input_s8_in3_relu8(const ethoedge_model_t *m, const int16_t *x,
                                 const struct ethoedge_work_s *work);
void ethoedge_input_s8_in6_relu8(const ethoedge_model_t *m, const int16_t *x,
                                 const struct ethoedge_work_s *work);
void ethoedge_requant_64_rshift(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                                int32_t *out32);
void ethoedge_update_64_rshift(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                               const int16_t *h, int16_t *hn);

/* The constants of a fused W=8 GRU op's assembly passes, set by the exporter (the passes load
   them by one LDM): the sigmoid table's entry of 0, 65535, 256 and 32896 (the interpolation's
   pair and rounding), 2^(sh_gx - 1) (0 for no right shift), sh_gx (-sh_gx in the left-shift
   form), 2^(sh_gh - 1), sh_gh; then the tanh table's entry of 0 and the first five of those. */
typedef struct {
    const int16_t *sig;
    int32_t ks[7];
    const int16_t *tanh;
    int32_t kt[5];
    /* the input layer and its requantisation in one pass (ethoedge_input_s8_in3_relu8 or
       _in6_relu8, sh_a > 0) or 0, and {2^(sh_a - 1), sh_a} */
    void (*input)(const ethoedge_model_t *m, const int16_t *x, const struct ethoedge_work_s *work);
    int32_t ka[2];
} ethoedge_gru8_consts_t;

/* One exported model: sizes, shifts (round_shift amounts, s < 0 is a left shift) and
   weights. acc64 = 0: every accumulator (and its bias) fits int32 (proved at export); biases
   are then int32_t, else int64_t. Weights are int8_t (W <= 8) or int16_t (W = 16). */
struct ethoedge_model_s {
    const ethoedge_ops_t *ops; /* kernels of the model's word length and accumulator type */
    int16_t word_bits;  /* W: 8 or 16 */
    int16_t hidden;     /* H */
    int16_t mlp_hidden; /* M */
    int16_t n_classes;  /* C */
    int16_t n_inputs;   /* 3 (raw) or 3 (dynamic) or 6 (static/dynamic) */
    int16_t input_stage; /* 0 raw, 1 dynamic part only, 2 dynamic then static parts */
    int16_t static_shift; /* k of the low-pass s += round_shift(x - s, k) */
    int16_t acc64;
    int16_t use_dsp;
    int16_t sh_a, sh_gx, sh_gh, sh_rn, sh_n_to_h, sh_m, sh_logits;
    const void *w_inp, *w_ih, *w_hh, *w_mlp, *w_out; /* tile (or pair) layout */
    const void *b_inp, *b_ih, *b_hh, *b_mlp, *b_out; /* bias_acc, int32_t or int64_t */
    const ethoedge_gru8_consts_t *gru8; /* a fused W=8 GRU op's constants, else 0 */
};

/* Scratch of one step, owned by the caller (sized by the model's header macros). acc holds
   max(6 min(ETHOEDGE_GRU_BLOCK, H), M, C) accumulators of int32_t (acc64 = 0) or int64_t. */
typedef struct ethoedge_work_s {
    int16_t *a;  /* max(H, M) */
    int16_t *hn; /* H */
    void *acc;
    int32_t *dot; /* acc64 with W = 8 only: as many int32_t as acc, else unused (may be 0) */
} ethoedge_work_t;

/* ---- scalar operations (static inline: no symbols, one definition per program) ---- */

/* sat32(v) */
static inline int32_t ethoedge_sat32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* round_shift(v, s) in int64: s > 0 (v + 2^(s-1)) >> s; s < 0 v << -s (wraps as the
   reference's int64); s == 0 v */
static inline int64_t ethoedge_round_shift64(int64_t v, int s)
{
    if (s > 0) {
        return (v + ((int64_t)1 << (s - 1))) >> s;
    }
    if (s < 0) {
        return (int64_t)((uint64_t)v << -s);
    }
    return v;
}

/* align(v, s) = sat32(round_shift(v, s)) of an int64 value */
static inline int32_t ethoedge_align64(int64_t v, int s)
{
    return ethoedge_sat32(ethoedge_round_shift64(v, s));
}

/* align(v, s) of an int32 accumulator whose rounding offset was proved to fit int32 */
static inline int32_t ethoedge_align32(int32_t v, int s)
{
    if (s > 0) {
        return (v + ((int32_t)1 << (s - 1))) >> s;
    }
    if (s < 0) {
        return ethoedge_sat32((int64_t)((uint64_t)(int64_t)v << -s));
    }
    return v;
}

/* sat(v, W) */
static inline int32_t ethoedge_satw(int64_t v, int w)
{
    const int64_t hi = ((int64_t)1 << (w - 1)) - 1;
    return (int32_t)(v > hi ? hi : v < -hi - 1 ? -hi - 1 : v);
}

/* ---- kernels (ethoedge_kernels.c) ---- */

/* Sigmoid and tanh, Q0.15, 257 entries over [-8, 8] (word-length independent). */
extern const int16_t ethoedge_sigmoid_q15[257];
extern const int16_t ethoedge_tanh_q15[257];

/* act(pre, table, W): pre at 12 fraction bits; the contract's LUT with interpolation,
   output at W - 1 fraction bits. */
int32_t ethoedge_act(int32_t pre, const int16_t table[257], int w);

/* out[i] = bias[i] + sum_k w[i][k] x[k] (bias may be 0: none), int32, W = 8 weights. */
void ethoedge_matvec_s8(const int8_t *w, const int32_t *bias, const int16_t *x, int rows,
                        int cols, int32_t *out, int use_dsp);
/* The same with int64 output and int64 bias: W = 16 weights (SMLALD), or W = 8 weights with
   an int32 scratch (dot, rows entries) when the accumulators need int64. */
void ethoedge_matvec_s16(const int16_t *w, const int64_t *bias, const int16_t *x, int rows,
                         int cols, int64_t *out, int use_dsp);
void ethoedge_matvec_s8_wide(const int8_t *w, const int64_t *bias, const int16_t *x, int rows,
                             int cols, int64_t *out, int32_t *dot, int use_dsp);

/* v = max(requant(acc[i], s, W), 0) if relu else requant(acc[i], s, W), into out16[i] (if
   out16 is not 0) or out32[i] */
void ethoedge_requant32(const int32_t *acc, int n, int s, int w, int relu, int16_t *out16,
                        int32_t *out32);
void ethoedge_requant64(const int64_t *acc, int n, int s, int w, int relu, int16_t *out16,
                        int32_t *out32);

/* GRU gate update of u units: gx, gh hold 3u accumulators (rows r, z, n of the units, bias
   included); h the old state of the units, hn the new one. */
void ethoedge_gru_update32(const ethoedge_model_t *m, const int32_t *gx, const int32_t *gh,
                           int u, const int16_t *h, int16_t *hn);
void ethoedge_gru_update64(const ethoedge_model_t *m, const int64_t *gx, const int64_t *gh,
                           int u, const int16_t *h, int16_t *hn);

/* Input stage, input layer and one GRU step for one sample x (x, y, z); h (H) is updated,
   lp (3) is the low-pass state of the static/dynamic input stage (unused for raw), first
   is nonzero at a window's first sample. */
void ethoedge_step(const ethoedge_model_t *m, int16_t *h, int16_t *lp, int first,
                   const int16_t x[3], const ethoedge_work_t *work);

/* MLP and output layer on the hidden state h: logits (C). */
void ethoedge_head(const ethoedge_model_t *m, const int16_t *h, int32_t *logits,
                   const ethoedge_work_t *work);

/* Index of the first maximum of v (n >= 1). */
int ethoedge_argmax(const int32_t *v, int n);

/* Orientation calibration (a bundle trained with window.calibrate: gravity): the firmware
   turns every sample by one rotation per animal before the model, as training turned each
   animal's windows. ethoedge_orientation writes that rotation, rot (3 x 3, row-major, at
   ETHOEDGE_ORIENT_FRAC fraction bits, entries within +-2^14), from the animal's mean
   acceleration mean (x, y, z) in the model's input units (int16 g * 2^IN_FRAC; any mean over
   hours of the animal's samples): the smallest rotation that takes mean onto the gravity axis
   (axis 0, 1, 2 for x, y, z; sign +1 or -1), half a turn about an axis normal to mean when it
   points the opposite way, the identity for a zero mean (or an axis outside 0..2).
   ethoedge_orient turns one sample (in may be out):
   out[i] = sat16(round_shift(sum_j rot[i][j] in[j], ETHOEDGE_ORIENT_FRAC)). Integer
   semantics: ethoedge.quantize.orient (the same integers); int64 arithmetic, division by
   shift and subtract (no library call). */
#define ETHOEDGE_ORIENT_FRAC 14
void ethoedge_orientation(const int16_t mean[3], int axis, int sign, int16_t rot[9]);
void ethoedge_orient(const int16_t rot[9], const int16_t in[3], int16_t out[3]);

#endif /* ETHOEDGE_KERNELS_H */
