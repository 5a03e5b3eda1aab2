/* ethoedge_kernels.c: the integer kernels of the ethoedge GRU student (see
   ethoedge_kernels.h; integer semantics: docs/fixedpoint.md). Shipped with ethoedge; do not
   edit a copy beside an exported model, re-export instead. */
#include "ethoedge_kernels.h"

#include <string.h> /* memcpy of 4 bytes: one load */

#if defined(__ARM_FEATURE_DSP) && !defined(ETHOEDGE_NO_DSP)
#include <arm_acle.h>
#define ETHOEDGE_DSP 1 /* SMLAD/SMLALD/SXTB16/QADD/SSAT; bit-identical to the plain C */
#else
#define ETHOEDGE_DSP 0
#endif

/* UMLAL/MLA in inline assembly (Thumb-2: every Armv7-M core, the M3 too) for the 64-bit
   roundings of the W = 16 gate update; plain C elsewhere (the same integers) */
#if defined(__GNUC__) && defined(__thumb2__)
#define ETHOEDGE_UMLAL 1
#else
#define ETHOEDGE_UMLAL 0
#endif

#if defined(__GNUC__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#define COLD __attribute__((noinline, cold)) /* general paths: optimised for size */
#else
#define NOINLINE
#define COLD
#endif

/* Q0.15 tables T[k] = clip(round(f((k - 128) / 16) * 32768), -32767, 32767), k = 0..256 */
const int16_t ethoedge_sigmoid_q15[257] = {
    11, 12, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22,
    23, 25, 26, 28, 30, 32, 34, 36, 38, 41, 43, 46,
    49, 52, 56, 59, 63, 67, 72, 76, 81, 86, 92, 98,
    104, 111, 118, 125, 133, 142, 151, 161, 171, 182, 194, 206,
    219, 233, 248, 264, 281, 299, 318, 338, 360, 383, 407, 433,
    461, 490, 521, 554, 589, 627, 666, 708, 753, 800, 851, 904,
    961, 1021, 1084, 1152, 1223, 1299, 1379, 1464, 1554, 1649, 1750, 1856,
    1969, 2088, 2213, 2346, 2486, 2633, 2789, 2952, 3124, 3306, 3496, 3696,
    3906, 4126, 4357, 4599, 4851, 5115, 5391, 5678, 5978, 6289, 6613, 6949,
    7297, 7658, 8031, 8416, 8813, 9221, 9641, 10072, 10513, 10964, 11424, 11894,
    12371, 12856, 13348, 13845, 14347, 14852, 15361, 15872, 16384, 16896, 17407, 17916,
    18421, 18923, 19420, 19912, 20397, 20874, 21344, 21804, 22255, 22696, 23127, 23547,
    23955, 24352, 24737, 25110, 25471, 25819, 26155, 26479, 26790, 27090, 27377, 27653,
    27917, 28169, 28411, 28642, 28862, 29072, 29272, 29462, 29644, 29816, 29979, 30135,
    30282, 30422, 30555, 30680, 30799, 30912, 31018, 31119, 31214, 31304, 31389, 31469,
    31545, 31616, 31684, 31747, 31807, 31864, 31917, 31968, 32015, 32060, 32102, 32141,
    32179, 32214, 32247, 32278, 32307, 32335, 32361, 32385, 32408, 32430, 32450, 32469,
    32487, 32504, 32520, 32535, 32549, 32562, 32574, 32586, 32597, 32607, 32617, 32626,
    32635, 32643, 32650, 32657, 32664, 32670, 32676, 32682, 32687, 32692, 32696, 32701,
    32705, 32709, 32712, 32716, 32719, 32722, 32725, 32727, 32730, 32732, 32734, 32736,
    32738, 32740, 32742, 32743, 32745, 32746, 32747, 32749, 32750, 32751, 32752, 32753,
    32754, 32755, 32756, 32756, 32757,
};

const int16_t ethoedge_tanh_q15[257] = {
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767,
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767,
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767,
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32766, -32766, -32766, -32766, -32765,
    -32765, -32765, -32764, -32764, -32763, -32762, -32762, -32761, -32760, -32759, -32758, -32756,
    -32755, -32753, -32751, -32749, -32746, -32743, -32740, -32736, -32732, -32727, -32721, -32715,
    -32708, -32700, -32691, -32681, -32670, -32657, -32642, -32625, -32606, -32584, -32560, -32532,
    -32501, -32466, -32426, -32381, -32329, -32271, -32206, -32132, -32048, -31953, -31846, -31726,
    -31589, -31435, -31262, -31067, -30847, -30600, -30322, -30010, -29660, -29268, -28830, -28341,
    -27797, -27191, -26519, -25776, -24956, -24054, -23066, -21986, -20813, -19542, -18173, -16706,
    -15143, -13486, -11743, -9919, -8025, -6073, -4075, -2045, 0, 2045, 4075, 6073,
    8025, 9919, 11743, 13486, 15143, 16706, 18173, 19542, 20813, 21986, 23066, 24054,
    24956, 25776, 26519, 27191, 27797, 28341, 28830, 29268, 29660, 30010, 30322, 30600,
    30847, 31067, 31262, 31435, 31589, 31726, 31846, 31953, 32048, 32132, 32206, 32271,
    32329, 32381, 32426, 32466, 32501, 32532, 32560, 32584, 32606, 32625, 32642, 32657,
    32670, 32681, 32691, 32700, 32708, 32715, 32721, 32727, 32732, 32736, 32740, 32743,
    32746, 32749, 32751, 32753, 32755, 32756, 32758, 32759, 32760, 32761, 32762, 32762,
    32763, 32764, 32764, 32765, 32765, 32765, 32766, 32766, 32766, 32766, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767,
};

#if ETHOEDGE_DSP
/* bytes 1 and 3 of v, sign-extended to an int16 pair: SXTB16 with ROR #8 */
static inline int32_t sxtb16_ror8(uint32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static inline uint32_t load32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The activation table's interpolation before its floor, plus c: with u = sat16(pre),
   t0 = T[(u >> 8) + 128], t1 the next entry and r = u & 255, t0 + ((t1 - t0) r + 128) >> 8
   is (t0 (256 - r) + t1 r + 128) >> 8: one SMLAD of the table pair (one 32-bit load, which
   Armv7-M allows at a halfword address) and the halfword pair (256 - r, r). |.| < 2^24 + c.
   tm = T + 128, the entry of 0. */
ALWAYS_INLINE int32_t interp256(int32_t u, const int16_t *tm, int32_t c, const int mla)
{
    const uint32_t r = (uint32_t)u & 255u;
    uint32_t pair = (r << 16) - r + 256u;
    __asm__("" : "+r"(tm)); /* tm in a register: the load indexes it by u >> 8 directly */
    if (mla) { /* (256 - r, r) = r 65535 + 256 by one MLA, the constants in registers (a loop
                  with registers to spare: the W = 8 gate passes) */
        __asm__("mla %0, %1, %2, %3" : "=r"(pair) : "r"(r), "r"(65535u), "r"(256u));
    }
    return __smlad((int32_t)load32(tm + (u >> 8)), (int32_t)pair, c);
}

/* act() at W = 8 (tm = T + 128): the interpolation's floor and the output rounding by 2^8
   fold into one floor, (t0 (256 - r) + t1 r + 128 + 2^15) >> 16, and the result needs only
   the top clamp, which SSAT to 8 bits gives (tables >= -32767 keep it >= -128) */
static inline int32_t act8_dsp(int32_t pre, const int16_t *tm)
{
    return __ssat(interp256(__ssat(pre, 16), tm, 128 + 32768, 1) >> 16, 8);
}

/* act() at W = 16 (no output rounding) */
static inline int32_t act16_dsp(int32_t pre, const int16_t *tm)
{
    return interp256(__ssat(pre, 16), tm, 128, 0) >> 8;
}
#endif

#if ETHOEDGE_DSP
/* 4 rows x 4 columns per iteration, n iterations: x pair by LDRD, the 4 rows' weight words
   by two LDRD, 8 SXTB16 and 8 SMLAD (21 instructions per 16 MACs with the loop). w and x are
   word-aligned; w in the tile layout (columns 0, 2, 1, 3 in each group of 4). */
static inline void tile4_s8(const int8_t **pw, const int16_t *x, int n, int32_t *p0, int32_t *p1,
                            int32_t *p2, int32_t *p3)
{
    const int8_t *w = *pw;
    int32_t a0 = *p0, a1 = *p1, a2 = *p2, a3 = *p3;
    uint32_t x01, x23, v0, v1, t;
    __asm__ volatile("1:\n\t"
                     "ldrd %[x01], %[x23], [%[px]], #8\n\t"
                     "ldrd %[v0], %[v1], [%[pw]], #8\n\t"
                     "sxtb16 %[t], %[v0]\n\t"
                     "smlad %[a0], %[t], %[x01], %[a0]\n\t"
                     "sxtb16 %[t], %[v0], ror #8\n\t"
                     "smlad %[a0], %[t], %[x23], %[a0]\n\t"
                     "sxtb16 %[t], %[v1]\n\t"
                     "smlad %[a1], %[t], %[x01], %[a1]\n\t"
                     "sxtb16 %[t], %[v1], ror #8\n\t"
                     "smlad %[a1], %[t], %[x23], %[a1]\n\t"
                     "ldrd %[v0], %[v1], [%[pw]], #8\n\t"
                     "sxtb16 %[t], %[v0]\n\t"
                     "smlad %[a2], %[t], %[x01], %[a2]\n\t"
                     "sxtb16 %[t], %[v0], ror #8\n\t"
                     "smlad %[a2], %[t], %[x23], %[a2]\n\t"
                     "sxtb16 %[t], %[v1]\n\t"
                     "smlad %[a3], %[t], %[x01], %[a3]\n\t"
                     "sxtb16 %[t], %[v1], ror #8\n\t"
                     "smlad %[a3], %[t], %[x23], %[a3]\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [pw] "+r"(w),
                       [px] "+r"(x), [n] "+r"(n), [x01] "=&r"(x01), [x23] "=&r"(x23),
                       [t] "=&r"(t), [v0] "=&r"(v0), [v1] "=&r"(v1)
                     :
                     : "cc", "memory");
    *p0 = a0;
    *p1 = a1;
    *p2 = a2;
    *p3 = a3;
    *pw = w;
}

#endif

/* sat32(a + b) */
static inline int32_t add_sat(int32_t a, int32_t b)
{
#if ETHOEDGE_DSP
    return __qadd(a, b);
#else
    return ethoedge_sat32((int64_t)a + b);
#endif
}

static inline int32_t sat16(int32_t v)
{
#if ETHOEDGE_DSP
    return __ssat(v, 16);
#else
    return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
#endif
}

/* act(pre): sat16(pre) is the Q3.12 table input (pre has 12 fraction bits); products and
   sums stay within int32 (|T[i+1] - T[i]| * 255 < 2^24). */
static inline int32_t act(int32_t pre, const int16_t *t, int w)
{
#if ETHOEDGE_DSP
    if (w == 8) { /* the forms the gate updates use */
        return act8_dsp(pre, t + 128);
    }
    if (w == 16) {
        return act16_dsp(pre, t + 128);
    }
#endif
    const int sh = 15 - (w - 1);
    const int32_t u = sat16(pre);
    const int32_t i = (u >> 8) + 128, r = u & 255;
    const int32_t t0 = t[i];
    int32_t y = t0 + (((t[i + 1] - t0) * r + 128) >> 8);
    if (sh > 0) {
        y = (y + (1 << (sh - 1))) >> sh;
    }
    return ethoedge_satw(y, w);
}

COLD int32_t ethoedge_act(int32_t pre, const int16_t table[257], int w)
{
    return act(pre, table, w);
}

/* ---- mat-vec, W = 8: tiles of 4 rows by 4 columns (4 SXTB16 pairs feeding 8 SMLAD) ---- */

/* sum over the complete groups of one row stored in 0, 2, 1, 3 order, plus its tail */
static inline int32_t row_s8(const int8_t *w, const int16_t *x, int cols, int32_t a)
{
    const int c4 = cols & ~3;
    int k;
    for (k = 0; k < c4; k += 4) {
        a += w[k] * x[k] + w[k + 2] * x[k + 1] + w[k + 1] * x[k + 2] + w[k + 3] * x[k + 3];
    }
    for (; k < cols; ++k) {
        a += w[k] * x[k];
    }
    return a;
}

#if ETHOEDGE_DSP
/* out[i] = bias[i] (0 if bias is 0) + row i of a tile of n rows in the tile layout (n = 4,
   or 1 for a row after the last complete tile) times x: one column at a time */
static COLD void tile_c_s8(const int8_t *w, const int32_t *bias, const int16_t *x, int n,
                           int cols, int32_t *out)
{
    const int c4 = cols & ~3, ct = cols - c4;
    int i, k;
    for (i = 0; i < n; ++i) {
        int32_t s = bias ? bias[i] : 0;
        for (k = 0; k < cols; ++k) {
            const int q = k & 3; /* column q of a group is stored at (0, 2, 1, 3)[q] */
            const int8_t *p = k < c4 ? w + n * (k - q) + 4 * i + ((q & 1) << 1 | q >> 1)
                                     : w + n * c4 + i * ct + (k - c4);
            s += *p * x[k];
        }
        out[i] = s;
    }
}

/* a + one row (complete groups in the order 0, 2, 1, 3, then the tail) times x: SMLAD */
static NOINLINE int32_t row_dsp_s8(const int8_t *w, const int16_t *x, int cols, int32_t a)
{
    const int c4 = cols & ~3;
    int k;
    for (k = 0; k < c4; k += 4) {
        const uint32_t v = load32(w + k);
        a = __smlad(__sxtb16((int32_t)v), (int32_t)load32(x + k), a);
        a = __smlad(sxtb16_ror8(v), (int32_t)load32(x + k + 2), a);
    }
    for (; k < cols; ++k) {
        a += w[k] * x[k];
    }
    return a;
}

#if ETHOEDGE_UMLAL
/* Assembler macros of the tiles below, defined and purged inside each function's assembly.
   word4 acc, w, xa, xb: acc += bytes 0 and 2 of w (int8) times the halfword pair xa and bytes
   1 and 3 times xb (the tile layout's column order 0, 2, 1, 3), SXTB16 into ip, then over w.
   tail2 acc0, acc1, w, x: w holds columns c, c+1 of two rows (row by row); acc0 += row 0
   times the pair x, acc1 += row 1 times x (SXTB16 pairs the rows; SMLAxy picks the halves). */
#define ETHOEDGE_ASM_MACROS                                                                    \
    ".macro word4 acc, w, xa, xb\n\t"                                                          \
    "sxtb16 ip, \\w\n\t"                                                                       \
    "smlad \\acc, ip, \\xa, \\acc\n\t"                                                         \
    "sxtb16 \\w, \\w, ror #8\n\t"                                                              \
    "smlad \\acc, \\w, \\xb, \\acc\n\t"                                                        \
    ".endm\n\t"                                                                                \
    ".macro tail2 acc0, acc1, w, x\n\t"                                                        \
    "sxtb16 ip, \\w\n\t"                                                                       \
    "smlabb \\acc0, ip, \\x, \\acc0\n\t"                                                       \
    "smlatb \\acc1, ip, \\x, \\acc1\n\t"                                                       \
    "sxtb16 \\w, \\w, ror #8\n\t"                                                              \
    "smlabt \\acc0, \\w, \\x, \\acc0\n\t"                                                      \
    "smlatt \\acc1, \\w, \\x, \\acc1\n\t"                                                      \
    ".endm\n\t"
#define ETHOEDGE_ASM_PURGE ".purgem word4\n\t.purgem tail2\n\t"

/* The loop of every tile of 4 rows (tiles_s8_even, tiles_s8_pairs), arguments as theirs: the
   frame (the tile's bias pointer, x, the output pointer and its end on the stack), per tile the
   biases into r3-r6 by LDM, then `start`, two "group" macros (4 columns each, advancing the
   weights in r0 and x in r2; ETHOEDGE_TILES_LOOP_N: `groups`, a multiple of them) per
   iteration up to the end of x (r1), then `end` and the sums by STM. */
#define ETHOEDGE_TILES_LOOP(start, end) ETHOEDGE_TILES_LOOP_N("group\n\tgroup\n\t", start, end)
#define ETHOEDGE_TILES_LOOP_N(groups, start, end)                                              \
    "push {r4-r11, lr}\n\t"                                                                     \
    "sub sp, sp, #16\n\t"                                                                       \
    "ldr r4, [sp, #52]\n\t" /* groups */                                                        \
    "ldr r5, [sp, #56]\n\t" /* out */                                                           \
    "str r1, [sp]\n\t"                                                                          \
    "str r2, [sp, #4]\n\t"                                                                      \
    "str r5, [sp, #8]\n\t"                                                                      \
    "add r6, r5, r3, lsl #4\n\t" /* the end of out */                                           \
    "str r6, [sp, #12]\n\t"                                                                     \
    "add r1, r2, r4, lsl #3\n\t" /* the end of x */                                             \
    "0:\n\t"                                                                                    \
    "ldrd ip, r2, [sp]\n\t" /* the tile's biases, x */                                          \
    "ldmia ip!, {r3, r4, r5, r6}\n\t"                                                           \
    "str ip, [sp]\n\t" start "1:\n\t" groups "cmp r2, r1\n\t"                                   \
    "bne 1b\n\t" end "ldrd ip, r7, [sp, #8]\n\t"                                                \
    "stmia ip!, {r3, r4, r5, r6}\n\t"                                                           \
    "str ip, [sp, #8]\n\t"                                                                      \
    "cmp ip, r7\n\t"                                                                            \
    "bne 0b\n\t"                                                                                \
    "add sp, sp, #16\n\t"                                                                       \
    "pop {r4-r11, pc}\n\t"

/* Every tile of 4 rows with biases, for an even number of groups of 4 columns (>= 2) and
   ntiles >= 1; w, x, bias and out word-aligned. All 14 free registers hold the inner loop:
   the pointers to the weights and x, the end of x, 4 accumulators, the x pairs (LDRD), one
   group of the 4 rows' weights (LDM) and a temporary (each weight word's second SXTB16 is
   written over the word): per 2 groups (32 MACs) 2 LDRD, 2 LDM, 16 SXTB16, 16 SMLAD, CMP and
   BNE, 38 instructions; per tile 8 more (biases by LDM, sums by STM). The tile's bias
   pointer, x and the output pointer and its end wait on the stack. */
#define ARG __attribute__((unused)) /* read from r0-r3 and the stack */
__attribute__((naked, noinline)) static void tiles_s8_even(ARG const int8_t *w,
                                                           ARG const int32_t *bias,
                                                           ARG const int16_t *x, ARG int ntiles,
                                                           ARG int groups, ARG int32_t *out)
{
    __asm__ volatile(
        ETHOEDGE_ASM_MACROS
        ".macro group\n\t" /* the 4 rows' weights of 4 columns, the x pairs */
        "ldrd r7, r8, [r2], #8\n\t"
        "ldmia r0!, {r9, r10, r11, lr}\n\t"
        "word4 r3, r9, r7, r8\n\t"
        "word4 r4, r10, r7, r8\n\t"
        "word4 r5, r11, r7, r8\n\t"
        "word4 r6, lr, r7, r8\n\t"
        ".endm\n\t"
        ETHOEDGE_TILES_LOOP("", "")
        ".purgem group\n\t"
        ETHOEDGE_ASM_PURGE);
}

/* The tile bodies of the 3- and 6-column input layers (tiles_s8_cols3/6 and their
   requantising twins): the biases into the 4 sums, the tile's weights, its MACs */
#define ETHOEDGE_COLS6_TILE                                                                    \
    "ldmia r1!, {r7, r8, r9, r10}\n\t"                                                         \
    "ldrd r11, lr, [r0], #8\n\t"                                                               \
    "word4 r7, r11, r4, r5\n\t"                                                                \
    "word4 r8, lr, r4, r5\n\t"                                                                 \
    "ldrd r11, lr, [r0], #8\n\t"                                                               \
    "word4 r9, r11, r4, r5\n\t"                                                                \
    "word4 r10, lr, r4, r5\n\t"                                                                \
    "ldrd r11, lr, [r0], #8\n\t" /* the tails of rows 0, 1 and of rows 2, 3 */                 \
    "tail2 r7, r8, r11, r6\n\t"                                                                \
    "tail2 r9, r10, lr, r6\n\t"
/* x: (x0, x1) in r4 and (x0, x2) in r5 */
#define ETHOEDGE_COLS3_X                                                                       \
    "ldrh r4, [r2]\n\t"                                                                        \
    "ldrh ip, [r2, #2]\n\t"                                                                    \
    "ldrh lr, [r2, #4]\n\t"                                                                    \
    "orr r5, r4, lr, lsl #16\n\t"                                                              \
    "orr r4, r4, ip, lsl #16\n\t"
#define ETHOEDGE_COLS3_TILE                                                                    \
    "ldmia r1!, {r6, r7, r8, r9}\n\t"                                                          \
    "ldmia r0!, {r10, r11, ip}\n\t"                                                            \
    "sxtb16 lr, r10\n\t"          /* (w00, w02) */                                             \
    "smlad r6, lr, r5, r6\n\t"                                                                 \
    "sxtb16 r10, r10, ror #8\n\t" /* (w01, w10) */                                             \
    "smlabt r6, r10, r4, r6\n\t"                                                               \
    "smlatb r7, r10, r4, r7\n\t"                                                               \
    "sxtb16 lr, r11\n\t"          /* (w11, w20) */                                             \
    "smlabt r7, lr, r4, r7\n\t"                                                                \
    "smlatb r8, lr, r4, r8\n\t"                                                                \
    "sxtb16 r11, r11, ror #8\n\t" /* (w12, w21) */                                             \
    "smlabt r7, r11, r5, r7\n\t"                                                               \
    "smlatt r8, r11, r4, r8\n\t"                                                               \
    "sxtb16 lr, ip\n\t"           /* (w22, w31) */                                             \
    "smlabt r8, lr, r5, r8\n\t"                                                                \
    "smlatt r9, lr, r4, r9\n\t"                                                                \
    "sxtb16 ip, ip, ror #8\n\t"   /* (w30, w32) */                                             \
    "smlad r9, ip, r5, r9\n\t"

/* Every tile of 4 rows of a 6-column layer (the static/dynamic input layer) with biases,
   ntiles >= 1, w, x, bias and out word-aligned: x in three registers for all tiles; per tile
   the biases by LDM, the group of columns 0-3 as in tiles_s8_even, the tails (columns 4 and 5
   of the 4 rows, row by row) by LDRD and tail2, the sums by STM: 35 instructions per 24
   MACs. */
__attribute__((naked, noinline)) static void tiles_s8_cols6(ARG const int8_t *w,
                                                            ARG const int32_t *bias,
                                                            ARG const int16_t *x, ARG int ntiles,
                                                            ARG int32_t *out)
{
    __asm__ volatile(
        ETHOEDGE_ASM_MACROS
        "push {r4-r11, lr}\n\t"
        "ldr ip, [sp, #36]\n\t" /* out */
        "ldrd r4, r5, [r2]\n\t" /* x0 x1, x2 x3 */
        "ldr r6, [r2, #8]\n\t"  /* x4 x5 */
        "mov r2, ip\n\t"
        "0:\n\t"
        ETHOEDGE_COLS6_TILE
        "stmia r2!, {r7, r8, r9, r10}\n\t"
        "subs r3, r3, #1\n\t"
        "bne 0b\n\t"
        "pop {r4-r11, pc}\n\t"
        ETHOEDGE_ASM_PURGE);
}

/* Every tile of 4 rows of a 3-column layer (the raw or dynamic input layer) with biases,
   ntiles >= 1, w, bias and out word-aligned, x any int16 address: (x0, x1) and (x0, x2) as
   halfword pairs in two registers for all tiles. A tile's 12 weights, row by row, are three
   words (LDM); SXTB16 and SXTB16 ROR 8 of each give pairs of bytes 0, 2 and 1, 3, which SMLAD
   (two of them pair with (x0, x2)) and SMLABB/SMLABT/SMLATB/SMLATT take: with the biases by
   LDM and the sums by STM, 21 instructions per 12 MACs. */
__attribute__((naked, noinline)) static void tiles_s8_cols3(ARG const int8_t *w,
                                                            ARG const int32_t *bias,
                                                            ARG const int16_t *x, ARG int ntiles,
                                                            ARG int32_t *out)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        ETHOEDGE_COLS3_X
        "ldr r2, [sp, #36]\n\t"       /* out */
        "0:\n\t"
        ETHOEDGE_COLS3_TILE
        "stmia r2!, {r6, r7, r8, r9}\n\t"
        "subs r3, r3, #1\n\t"
        "bne 0b\n\t"
        "pop {r4-r11, pc}\n\t");
}

/* tiles_s8_cols6 and tiles_s8_cols3 with the requantisation of the input layer at W = 8 with
   ReLU (the fused GRU's input, ethoedge_input_s8_in6_relu8/_in3_relu8): each sum v becomes
   USAT((v + k[0]) >> k[1], 7) (k = {2^(s-1), s}, s > 0), two int16 per word by ORR, the tile's
   4 by one STRD into out16 (word-aligned): 35 instructions per tile and no pass over the
   accumulators after it. */
#define ETHOEDGE_REQUANT4(a, b, c, d, r, s)                                                    \
    "add " a ", " a ", " r "\n\t"                                                              \
    "add " b ", " b ", " r "\n\t"                                                              \
    "add " c ", " c ", " r "\n\t"                                                              \
    "add " d ", " d ", " r "\n\t"                                                              \
    "asr " a ", " a ", " s "\n\t"                                                              \
    "asr " b ", " b ", " s "\n\t"                                                              \
    "asr " c ", " c ", " s "\n\t"                                                              \
    "asr " d ", " d ", " s "\n\t"                                                              \
    "usat " a ", #7, " a "\n\t"                                                                \
    "usat " b ", #7, " b "\n\t"                                                                \
    "usat " c ", #7, " c "\n\t"                                                                \
    "usat " d ", #7, " d "\n\t"                                                                \
    "orr " a ", " a ", " b ", lsl #16\n\t"                                                     \
    "orr " c ", " c ", " d ", lsl #16\n\t"                                                     \
    "strd " a ", " c ", [r2], #8\n\t"

__attribute__((naked, noinline)) static void tiles_s8_cols6_a8(ARG const int8_t *w,
                                                               ARG const int32_t *bias,
                                                               ARG const int16_t *x,
                                                               ARG int ntiles, ARG int16_t *out16,
                                                               ARG const int32_t *k)
{
    __asm__ volatile(
        ETHOEDGE_ASM_MACROS
        "push {r4-r11, lr}\n\t"
        "ldr ip, [sp, #40]\n\t" /* k */
        "ldrd r7, r8, [ip]\n\t"
        "push {r7, r8}\n\t"     /* 2^(s-1), s at [sp] */
        "ldr ip, [sp, #44]\n\t" /* out16 */
        "ldrd r4, r5, [r2]\n\t" /* x0 x1, x2 x3 */
        "ldr r6, [r2, #8]\n\t"  /* x4 x5 */
        "mov r2, ip\n\t"
        "0:\n\t"
        ETHOEDGE_COLS6_TILE
        "ldrd r11, lr, [sp]\n\t"
        ETHOEDGE_REQUANT4("r7", "r8", "r9", "r10", "r11", "lr")
        "subs r3, r3, #1\n\t"
        "bne 0b\n\t"
        "add sp, sp, #8\n\t"
        "pop {r4-r11, pc}\n\t"
        ETHOEDGE_ASM_PURGE);
}

__attribute__((naked, noinline)) static void tiles_s8_cols3_a8(ARG const int8_t *w,
                                                               ARG const int32_t *bias,
                                                               ARG const int16_t *x,
                                                               ARG int ntiles, ARG int16_t *out16,
                                                               ARG const int32_t *k)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldr lr, [sp, #40]\n\t" /* k */
        "ldrd r10, r11, [lr]\n\t"
        "push {r10, r11}\n\t"   /* 2^(s-1), s at [sp] */
        ETHOEDGE_COLS3_X
        "ldr r2, [sp, #44]\n\t"       /* out16 */
        "0:\n\t"
        ETHOEDGE_COLS3_TILE
        "ldrd r10, r11, [sp]\n\t"
        ETHOEDGE_REQUANT4("r6", "r7", "r8", "r9", "r10", "r11")
        "subs r3, r3, #1\n\t"
        "bne 0b\n\t"
        "add sp, sp, #8\n\t"
        "pop {r4-r11, pc}\n\t");
}
#undef ETHOEDGE_REQUANT4
#undef ETHOEDGE_COLS6_TILE
#undef ETHOEDGE_COLS3_X
#undef ETHOEDGE_COLS3_TILE

/* Every tile of 4 rows in the pair layout (ethoedge_layer_s8_pairs) with biases, for a number
   of groups of 4 columns that is a multiple of 4 (tiles_s8_pairs4) or of 2 (tiles_s8_pairs2),
   ntiles >= 1; w, x, bias and out word-aligned. A weight word holds two rows: its halfwords
   are 256 w_b + w_a for columns c and c + 1, its SXTB16 is (w_a, w_a'), so per word one SMLAD
   into the pair's raw sum, one SXTB16 and one SMLAD into row a's sum: per 4 groups (64 MACs)
   4 LDRD, 4 LDM, 16 SXTB16, 32 SMLAD, CMP and BNE, 58 instructions (30 per 2 groups). Per
   tile 14 more: the biases by LDM, raw = b_a + 256 b_b (two ADD), row b = (raw - row a) >> 8
   (two SUB, two ASR; exact, as the exporter proves that 256 (W_b x + b_b) fits int32, and
   SMLAD's sums wrap), the sums by STM. */
#define ETHOEDGE_PAIR_TILES(groups)                                                            \
    __asm__ volatile(                                                                          \
        ".macro pair2 lo, raw, w, x\n\t" /* one word: rows a, b of a column pair */            \
        "smlad \\raw, \\w, \\x, \\raw\n\t"                                                         \
        "sxtb16 \\w, \\w\n\t"                                                                     \
        "smlad \\lo, \\w, \\x, \\lo\n\t"                                                           \
        ".endm\n\t"                                                                             \
        ".macro group\n\t" /* 4 columns of the 4 rows: 2 column pairs of 2 row pairs */        \
        "ldrd r7, r8, [r2], #8\n\t"                                                             \
        "ldmia r0!, {r9, r10, r11, lr}\n\t"                                                     \
        "pair2 r3, r4, r9, r7\n\t"                                                              \
        "pair2 r5, r6, r10, r7\n\t"                                                             \
        "pair2 r3, r4, r11, r8\n\t"                                                             \
        "pair2 r5, r6, lr, r8\n\t"                                                              \
        ".endm\n\t" ETHOEDGE_TILES_LOOP_N(groups,                                               \
                                           "add r4, r3, r4, lsl #8\n\t" /* b_a + 256 b_b */    \
                                           "add r6, r5, r6, lsl #8\n\t",                       \
                                           "sub r4, r4, r3\n\t" /* (raw - row a) >> 8 */       \
                                           "asr r4, r4, #8\n\t"                                \
                                           "sub r6, r6, r5\n\t"                                \
                                           "asr r6, r6, #8\n\t") ".purgem group\n\t"            \
                                                                 ".purgem pair2\n\t")

__attribute__((naked, noinline)) static void tiles_s8_pairs4(ARG const int8_t *w,
                                                             ARG const int32_t *bias,
                                                             ARG const int16_t *x, ARG int ntiles,
                                                             ARG int groups, ARG int32_t *out)
{
    ETHOEDGE_PAIR_TILES("group\n\tgroup\n\tgroup\n\tgroup\n\t");
}

__attribute__((naked, noinline)) static void tiles_s8_pairs2(ARG const int8_t *w,
                                                             ARG const int32_t *bias,
                                                             ARG const int16_t *x, ARG int ntiles,
                                                             ARG int groups, ARG int32_t *out)
{
    ETHOEDGE_PAIR_TILES("group\n\tgroup\n\t");
}
#undef ETHOEDGE_PAIR_TILES

/* Every tile of 4 rows in the pair layout for exactly 32 columns (ethoedge_layer_s8_pairs32),
   ntiles >= 1, w, x, bias and out word-aligned: the 8 groups of a tile one after the other,
   x read at fixed offsets (no inner loop, no pointer to reset): per tile the biases by LDM,
   two ADD, 8 groups of 14 instructions (LDRD, LDM, 4 SXTB16, 8 SMLAD), two SUB, two ASR, the
   sums by STM and the end test (its end waits on the stack): 123 instructions per 128 MACs,
   against 130 in tiles_s8_pairs4. */
__attribute__((naked, noinline)) static void tiles_s8_pairs8(ARG const int8_t *w,
                                                             ARG const int32_t *bias,
                                                             ARG const int16_t *x, ARG int ntiles,
                                                             ARG int groups, ARG int32_t *out)
{
    __asm__ volatile(
        ".macro pair2 lo, raw, w, x\n\t"
        "smlad \\raw, \\w, \\x, \\raw\n\t"
        "sxtb16 \\w, \\w\n\t"
        "smlad \\lo, \\w, \\x, \\lo\n\t"
        ".endm\n\t"
        ".macro group off\n\t" /* columns off/2 .. off/2 + 3 of the 4 rows */
        "ldrd r7, r8, [r2, #\\off]\n\t"
        "ldmia r0!, {r9, r10, r11, lr}\n\t"
        "pair2 r3, r4, r9, r7\n\t"
        "pair2 r5, r6, r10, r7\n\t"
        "pair2 r3, r4, r11, r8\n\t"
        "pair2 r5, r6, lr, r8\n\t"
        ".endm\n\t"
        "push {r4-r11, lr}\n\t"
        "ldr ip, [sp, #40]\n\t" /* out (groups, 8, unused) */
        "add r3, ip, r3, lsl #4\n\t"
        "push {r3}\n\t" /* the end of out */
        "0:\n\t"
        "ldmia r1!, {r3, r4, r5, r6}\n\t"
        "add r4, r3, r4, lsl #8\n\t" /* b_a + 256 b_b */
        "add r6, r5, r6, lsl #8\n\t"
        "group 0\n\t"
        "group 8\n\t"
        "group 16\n\t"
        "group 24\n\t"
        "group 32\n\t"
        "group 40\n\t"
        "group 48\n\t"
        "group 56\n\t"
        "sub r4, r4, r3\n\t" /* (raw - row a) >> 8 */
        "asr r4, r4, #8\n\t"
        "sub r6, r6, r5\n\t"
        "asr r6, r6, #8\n\t"
        "stmia ip!, {r3, r4, r5, r6}\n\t"
        "ldr r7, [sp]\n\t"
        "cmp ip, r7\n\t"
        "bne 0b\n\t"
        "add sp, sp, #4\n\t"
        "pop {r4-r11, pc}\n\t"
        ".purgem group\n\t"
        ".purgem pair2\n\t");
}

#undef ARG
#endif

/* every complete tile of 4 rows when cols is a multiple of 4 and w, x are word-aligned */
static void tiles_s8_dsp(const int8_t *w, const int32_t *bias, const int16_t *x, int ntiles,
                         int groups, int32_t *out)
{
#if ETHOEDGE_UMLAL
    if (bias && ntiles > 0 && groups % 2 == 0 && (((uintptr_t)bias | (uintptr_t)out) & 3) == 0) {
        tiles_s8_even(w, bias, x, ntiles, groups, out);
        return;
    }
#endif
    for (; ntiles > 0; --ntiles) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (bias) {
            a0 = bias[0];
            a1 = bias[1];
            a2 = bias[2];
            a3 = bias[3];
            bias += 4;
        }
        tile4_s8(&w, x, groups, &a0, &a1, &a2, &a3);
        out[0] = a0;
        out[1] = a1;
        out[2] = a2;
        out[3] = a3;
        out += 4;
    }
}

/* The complete tiles of 4 rows of the DSP build: SMLAD tiles (w and x word-aligned, as the
   exported arrays and the generated buffers are), their column tails in plain C (also for any
   x when cols < 4). Returns the rows done (rows rounded down to a multiple of 4). */
static int matvec_s8_tiles(const int8_t *w, const int32_t *bias, const int16_t *x, int rows,
                           int cols, int32_t *out)
{
    const int c4 = cols & ~3, ct = cols - c4;
    int r = 0, k;
    if (c4 && !ct) { /* the common case: straight SMLAD tiles */
        r = rows & ~3;
        tiles_s8_dsp(w, bias, x, r >> 2, c4 >> 2, out);
        return r;
    }
    for (; r + 4 <= rows; r += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (bias) {
            a0 = bias[r];
            a1 = bias[r + 1];
            a2 = bias[r + 2];
            a3 = bias[r + 3];
        }
        if (c4) {
            const int8_t *pw = w;
            tile4_s8(&pw, x, c4 >> 2, &a0, &a1, &a2, &a3);
        }
        w += 4 * c4;
        for (k = 0; k < ct; ++k) {
            const int32_t xk = x[c4 + k];
            a0 += w[k] * xk;
            a1 += w[ct + k] * xk;
            a2 += w[2 * ct + k] * xk;
            a3 += w[3 * ct + k] * xk;
        }
        w += 4 * ct;
        out[r] = a0;
        out[r + 1] = a1;
        out[r + 2] = a2;
        out[r + 3] = a3;
    }
    return r;
}

/* DSP build: the SMLAD tiles of 4 rows (word-aligned w and x), then the row tail one row at a
   time; unaligned inputs and use_dsp = 0 take one compact plain-C loop (the 4-row plain-C
   tiles are compiled only into builds without DSP). */
void ethoedge_matvec_s8(const int8_t *w, const int32_t *bias, const int16_t *x, int rows,
                        int cols, int32_t *out, int use_dsp)
{
    const int c4 = cols & ~3;
    const int dsp = use_dsp && (((uintptr_t)w | (uintptr_t)x) & 3) == 0;
    int r = 0;
    if (dsp || !c4) { /* without complete groups (the input layer) any x will do */
        r = matvec_s8_tiles(w, bias, x, rows, cols, out);
        w += (long)r * cols;
        for (; r < rows; ++r) { /* the rows after the last tile */
            out[r] = row_dsp_s8(w, x, cols, bias ? bias[r] : 0);
            w += cols;
        }
    }
    while (r < rows) {
        const int n = rows - r >= 4 ? 4 : 1;
        tile_c_s8(w, bias ? bias + r : 0, x, n, cols, out + r);
        w += (long)n * cols;
        r += n;
    }
}
#else
void ethoedge_matvec_s8(const int8_t *w, const int32_t *bias, const int16_t *x, int rows,
                        int cols, int32_t *out, int use_dsp)
{
    const int c4 = cols & ~3, ct = cols - c4;
    int r, k;
    (void)use_dsp;
    r = 0;
    for (; r + 4 <= rows; r += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (bias) {
            a0 = bias[r];
            a1 = bias[r + 1];
            a2 = bias[r + 2];
            a3 = bias[r + 3];
        }
        {
            for (k = 0; k < c4; k += 4) {
                const int8_t *g = w + 4 * k;
                const int32_t x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
                a0 += g[0] * x0 + g[2] * x1 + g[1] * x2 + g[3] * x3;
                a1 += g[4] * x0 + g[6] * x1 + g[5] * x2 + g[7] * x3;
                a2 += g[8] * x0 + g[10] * x1 + g[9] * x2 + g[11] * x3;
                a3 += g[12] * x0 + g[14] * x1 + g[13] * x2 + g[15] * x3;
            }
        }
        w += 4 * c4;
        for (k = 0; k < ct; ++k) {
            const int32_t xk = x[c4 + k];
            a0 += w[k] * xk;
            a1 += w[ct + k] * xk;
            a2 += w[2 * ct + k] * xk;
            a3 += w[3 * ct + k] * xk;
        }
        w += 4 * ct;
        out[r] = a0;
        out[r + 1] = a1;
        out[r + 2] = a2;
        out[r + 3] = a3;
    }
    for (; r < rows; ++r) {
        int32_t a = bias ? bias[r] : 0;
        {
            a = row_s8(w, x, cols, a);
        }
        out[r] = a;
        w += cols;
    }
}
#endif

void ethoedge_matvec_s8_wide(const int8_t *w, const int64_t *bias, const int16_t *x, int rows,
                             int cols, int64_t *out, int32_t *dot, int use_dsp)
{
    int r;
    ethoedge_matvec_s8(w, 0, x, rows, cols, dot, use_dsp);
    for (r = 0; r < rows; ++r) {
        out[r] = (int64_t)dot[r] + (bias ? bias[r] : 0);
    }
}

/* ---- mat-vec, W = 8, pair layout: two rows in each weight word ---- */

/* out = W x + bias (bias 0: none) in the pair layout (ethoedge.export.emit.pair_matrix):
   rows in tiles of 4, each tile column pair by column pair, per column pair the words of
   rows (0, 1) and rows (2, 3); the word of rows (a, b) and columns (c, c + 1) holds the bytes
   w_a(c), w_b(c) - (w_a(c) < 0), w_a(c + 1), w_b(c + 1) - (w_a(c + 1) < 0), so that its
   halfwords are 256 w_b + w_a and its even bytes w_a. rows a multiple of 4, cols even. Row a
   sums its bytes; row b is (the halfwords' sum - row a's) / 256, exact in unsigned (wrapping)
   arithmetic wherever 256 (W_b x + b_b) fits int32 (the exporter proves it). */
#if !(ETHOEDGE_DSP && ETHOEDGE_UMLAL)
static inline uint32_t load16s(const int8_t *p) /* an int16 of two bytes, sign-extended */
{
    int16_t v;
    memcpy(&v, p, 2);
    return (uint32_t)(int32_t)v;
}

/* one column pair of a tile: 4 halfwords into the raw sums, 4 bytes into rows 0 and 2 */
#define ETHOEDGE_PAIR_COLUMNS(w, x0, x1)                                                       \
    do {                                                                                       \
        r0 += load16s(w) * (x0);                                                               \
        l0 += (uint32_t)(w)[0] * (x0);                                                         \
        r0 += load16s((w) + 2) * (x1);                                                         \
        l0 += (uint32_t)(w)[2] * (x1);                                                         \
        r1 += load16s((w) + 4) * (x0);                                                         \
        l1 += (uint32_t)(w)[4] * (x0);                                                         \
        r1 += load16s((w) + 6) * (x1);                                                         \
        l1 += (uint32_t)(w)[6] * (x1);                                                         \
    } while (0)

static NOINLINE void pairs_c_s8(const int8_t *w, const int32_t *bias, const int16_t *x,
                                int rows, int cols, int32_t *out)
{
    const int c4 = cols & ~3;
    int r, k;
    for (r = 0; r < rows; r += 4, out += 4) {
        uint32_t l0 = 0, r0 = 0, l1 = 0, r1 = 0; /* rows 0, 2 and the raw sums of 0-1, 2-3 */
        uint32_t d0, d1;
        if (bias) {
            l0 = (uint32_t)bias[r];
            r0 = l0 + ((uint32_t)bias[r + 1] << 8);
            l1 = (uint32_t)bias[r + 2];
            r1 = l1 + ((uint32_t)bias[r + 3] << 8);
        }
        for (k = 0; k < c4; k += 4, w += 16) {
            const uint32_t x0 = (uint32_t)x[k], x1 = (uint32_t)x[k + 1];
            const uint32_t x2 = (uint32_t)x[k + 2], x3 = (uint32_t)x[k + 3];
            ETHOEDGE_PAIR_COLUMNS(w, x0, x1);
            ETHOEDGE_PAIR_COLUMNS(w + 8, x2, x3);
        }
        if (k < cols) { /* cols = 4 n + 2 */
            const uint32_t x0 = (uint32_t)x[k], x1 = (uint32_t)x[k + 1];
            ETHOEDGE_PAIR_COLUMNS(w, x0, x1);
            w += 8;
        }
        d0 = r0 - l0; /* 256 (W_b x + b_b) modulo 2^32 */
        d1 = r1 - l1;
        out[0] = (int32_t)l0;
        out[1] = (int32_t)(d0 >> 8) - (int32_t)((d0 >> 31) << 24);
        out[2] = (int32_t)l1;
        out[3] = (int32_t)(d1 >> 8) - (int32_t)((d1 >> 31) << 24);
    }
}
#undef ETHOEDGE_PAIR_COLUMNS
#endif

/* ---- mat-vec, W = 16: tiles of 2 rows by 8 columns (8 SMLALD into int64) ---- */

#if ETHOEDGE_DSP
/* 4 columns of two rows of int16 weights against x (int64 sums a0, a1): one LDRD of x,
   two of weights and four SMLALD; the asm loops below repeat it (operands named px, pw,
   x01, x23, v0, v1, a0, a1) */
#define SMLALD4_2ROWS \
    "ldrd %[x01], %[x23], [%[px]], #8\n\t" \
    "ldrd %[v0], %[v1], [%[pw]], #8\n\t" \
    "smlald %Q[a0], %R[a0], %[v0], %[x01]\n\t" \
    "smlald %Q[a0], %R[a0], %[v1], %[x23]\n\t" \
    "ldrd %[v0], %[v1], [%[pw]], #8\n\t" \
    "smlald %Q[a1], %R[a1], %[v0], %[x01]\n\t" \
    "smlald %Q[a1], %R[a1], %[v1], %[x23]\n\t"

/* 2 rows x 8 columns per iteration, n iterations: 2 LDRD of x and 4 of w, 8 SMLALD (16
   instructions per 16 MACs with the loop). w and x word-aligned, w in the tile layout. */
static inline void tile2_s16(const int16_t **pw, const int16_t *x, int n, int64_t *p0,
                             int64_t *p1)
{
    const int16_t *w = *pw;
    int64_t a0 = *p0, a1 = *p1;
    uint32_t x01, x23, v0, v1;
    __asm__ volatile("1:\n\t" SMLALD4_2ROWS SMLALD4_2ROWS
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [pw] "+r"(w), [px] "+r"(x), [n] "+r"(n),
                       [x01] "=&r"(x01), [x23] "=&r"(x23), [v0] "=&r"(v0), [v1] "=&r"(v1)
                     :
                     : "cc", "memory");
    *p0 = a0;
    *p1 = a1;
    *pw = w;
}
#endif

#if ETHOEDGE_DSP
/* every pair of rows when cols is a multiple of 8 and w, x are word-aligned: SMLALD tiles
   back to back (the general loop's per-tile bookkeeping, about 45 instructions per pair of
   rows, spilled to the stack, cost as much as a third of the tile's own work at 32 columns) */
static void tiles_s16_dsp(const int16_t *w, const int64_t *bias, const int16_t *x, int pairs,
                          int groups8, int64_t *out)
{
    for (; pairs > 0; --pairs) {
        int64_t a0 = 0, a1 = 0;
        if (bias) {
            a0 = bias[0];
            a1 = bias[1];
            bias += 2;
        }
        tile2_s16(&w, x, groups8, &a0, &a1);
        out[0] = a0;
        out[1] = a1;
        out += 2;
    }
}
#endif

#if ETHOEDGE_DSP && defined(__OPTIMIZE__)
/* every pair of rows, bias not 0, cols a multiple of 16 (groups16 = cols / 16), w and x
   word-aligned: the whole loop in assembly, 16 columns per inner iteration (30 instructions
   per 32 MACs) and 11 per pair of rows (the biases in, the sums out, x and the count reset;
   the pair count lives on the stack). 13 registers: built only with optimisation (no frame
   pointer); the tiles of 8 columns serve otherwise. */
static void tiles_s16_dsp16(const int16_t *w, const int64_t *bias, const int16_t *x, int pairs,
                            int groups16, int64_t *out)
{
    int64_t a0, a1;
    uint32_t x01, x23, v0, v1;
    const int16_t *px;
    int n;
    __asm__ volatile("2:\n\t"
                     "ldr %[px], %[x]\n\t"
                     "ldr %[n], %[g]\n\t"
                     "ldrd %Q[a0], %R[a0], [%[pb]], #8\n\t"
                     "ldrd %Q[a1], %R[a1], [%[pb]], #8\n\t"
                     "1:\n\t" SMLALD4_2ROWS SMLALD4_2ROWS SMLALD4_2ROWS SMLALD4_2ROWS
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     "strd %Q[a0], %R[a0], [%[po]], #8\n\t"
                     "strd %Q[a1], %R[a1], [%[po]], #8\n\t"
                     "ldr %[n], %[np]\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "str %[n], %[np]\n\t"
                     "bne 2b\n\t"
                     : [pw] "+r"(w), [pb] "+r"(bias), [po] "+r"(out), [np] "+m"(pairs),
                       [a0] "=&r"(a0), [a1] "=&r"(a1), [x01] "=&r"(x01), [x23] "=&r"(x23),
                       [v0] "=&r"(v0), [v1] "=&r"(v1), [px] "=&r"(px), [n] "=&r"(n)
                     : [x] "m"(x), [g] "m"(groups16)
                     : "cc", "memory");
}
#endif

/* row . x over 4 columns (int16 products summed in int64) */
static inline int64_t dot4_s16(const int16_t *w, const int16_t *x)
{
    return (int64_t)(w[0] * x[0]) + w[1] * x[1] + (int64_t)(w[2] * x[2]) + w[3] * x[3];
}

/* a + w x (an int16 product, in int64): SMLALBB on the DSP path */
ALWAYS_INLINE int64_t mac16(int64_t a, int32_t w, int32_t x)
{
#if ETHOEDGE_DSP
    __asm__("smlalbb %Q0, %R0, %1, %2" : "+r"(a) : "r"(w), "r"(x));
    return a;
#else
    return a + (int64_t)(w * x);
#endif
}

/* a + w[0] x0 + w[1] x1 + w[2] x2 */
ALWAYS_INLINE int64_t dot3_s16(int64_t a, const int16_t *w, int32_t x0, int32_t x1, int32_t x2)
{
    return mac16(mac16(mac16(a, w[0], x0), w[1], x1), w[2], x2);
}

/* The input layers (3 or 6 columns) with their inputs in registers (bias not 0): 3 columns
   are stored row by row (no complete group); 6 as pairs of rows (each row's group of 4, then
   each row's 2 remaining columns) and a last row of an odd count in natural order. */
static void matvec_s16_inputs(const int16_t *w, const int64_t *bias, const int16_t *x,
                              int rows, int cols, int64_t *out)
{
    const int32_t x0 = x[0], x1 = x[1], x2 = x[2];
    const int64_t *const end = bias + rows;
    if (cols == 3) {
        for (; bias < end; ++bias, ++out, w += 3) {
            *out = dot3_s16(*bias, w, x0, x1, x2);
        }
        return;
    }
    {
        const int32_t x3 = x[3], x4 = x[4], x5 = x[5];
        for (; bias + 2 <= end; bias += 2, out += 2, w += 12) {
            int64_t a0 = dot3_s16(bias[0], w, x0, x1, x2);
            int64_t a1 = dot3_s16(bias[1], w + 4, x0, x1, x2);
            a0 = mac16(mac16(mac16(a0, w[3], x3), w[8], x4), w[9], x5);
            a1 = mac16(mac16(mac16(a1, w[7], x3), w[10], x4), w[11], x5);
            out[0] = a0;
            out[1] = a1;
        }
        if (bias < end) {
            *out = dot3_s16(dot3_s16(*bias, w, x0, x1, x2), w + 3, x3, x4, x5);
        }
    }
}

void ethoedge_matvec_s16(const int16_t *w, const int64_t *bias, const int16_t *x, int rows,
                         int cols, int64_t *out, int use_dsp)
{
    const int c4 = cols & ~3, ct = cols - c4;
    int r, k;
    if ((cols == 3 || cols == 6) && bias) {
        matvec_s16_inputs(w, bias, x, rows, cols, out);
        return;
    }
#if ETHOEDGE_DSP
    const int aligned = (((uintptr_t)w | (uintptr_t)x) & 3) == 0;
#endif
    (void)use_dsp;
    r = 0;
#if ETHOEDGE_DSP
    if (use_dsp && aligned && !ct && c4 && !(c4 & 7)) { /* the common case */
        r = rows & ~1;
#if defined(__OPTIMIZE__)
        if (!(c4 & 15) && bias && r) {
            tiles_s16_dsp16(w, bias, x, r >> 1, c4 >> 4, out);
        } else
#endif
        {
            tiles_s16_dsp(w, bias, x, r >> 1, c4 >> 3, out);
        }
        w += (long)r * cols;
    }
#endif
    for (; r + 2 <= rows; r += 2) {
        int64_t a0 = bias ? bias[r] : 0, a1 = bias ? bias[r + 1] : 0;
        k = 0;
#if ETHOEDGE_DSP
        if (use_dsp && aligned && c4 >= 8) {
            k = c4 & ~7;
            tile2_s16(&w, x, k >> 3, &a0, &a1);
        }
#endif
        for (; k < c4; k += 4) { /* a group of 4 columns: row 0's four, then row 1's */
            a0 += dot4_s16(w, x + k);
            a1 += dot4_s16(w + 4, x + k);
            w += 8;
        }
        for (k = 0; k < ct; ++k) {
            const int32_t xk = x[c4 + k];
            a0 += w[k] * xk;
            a1 += w[ct + k] * xk;
        }
        w += 2 * ct;
        out[r] = a0;
        out[r + 1] = a1;
    }
    if (r < rows) { /* the last row of an odd count, in natural order */
        int64_t a = bias ? bias[r] : 0;
        k = 0;
#if ETHOEDGE_DSP
        if (use_dsp) {
            for (; k < c4; k += 2) {
                a = __smlald((int32_t)load32(w + k), (int32_t)load32(x + k), a);
            }
        }
#endif
        for (; k < cols; ++k) {
            a += (int32_t)w[k] * x[k];
        }
        out[r] = a;
    }
}

/* ---- requantise ---- */

/* align(v, s) out of line (the general paths: any shift) */
static COLD int32_t align_g(int64_t v, int s)
{
    return ethoedge_align64(v, s);
}


/* sat32(round_shift(v, s)) for 0 < s < 64 on the two 32-bit halves (no 64-bit shifter):
   the same integer as ethoedge_align64(v, s). For s >= 32 the result is the high word shifted,
   always within int32. */
ALWAYS_INLINE int32_t rsat64(int64_t v, int s)
{
    const uint64_t t = (uint64_t)v + ((uint64_t)1 << (s - 1)); /* wraps as int64 would */
    const uint32_t lo = (uint32_t)t;
    const int32_t hi = (int32_t)(uint32_t)(t >> 32);
    uint32_t l;
    int32_t h;
    if (s >= 32) {
        return hi >> (s - 32);
    }
    l = (lo >> s) | ((uint32_t)hi << (32 - s));
    h = hi >> s; /* high word of the shifted value */
    if (h != ((int32_t)l >> 31)) {
        return h < 0 ? INT32_MIN : INT32_MAX;
    }
    return (int32_t)l;
}

/* round_shift(v, s) for 0 < s < 32 where the result is proved to fit int32 (no saturation,
   |v| + 2^(s-1) < 2^(31+s)), p = 2^(32-s): (v + 2^(s-1)) >> s is the high word of the 96-bit
   v p + 2^31 = hi p 2^32 + lo p + 2^31, so its low 32 bits are, modulo 2^32, hi p + the high
   word of lo p + bit 31 of its low word (the rounding carry): UMULL, MLA and an ADD instead
   of a 64-bit shift. */
ALWAYS_INLINE int32_t rs64_low(int64_t v, uint32_t p)
{
#if ETHOEDGE_UMLAL
    uint32_t a, b;
    __asm__("umull %[a], %[b], %Q[v], %[p]\n\t"
            "mla %[b], %R[v], %[p], %[b]\n\t"
            "add %[b], %[b], %[a], lsr #31"
            : [a] "=&r"(a), [b] "=&r"(b)
            : [v] "r"(v), [p] "r"(p));
    return (int32_t)b;
#else
    const uint32_t lo = (uint32_t)v, hi = (uint32_t)((uint64_t)v >> 32);
    const uint64_t t = (uint64_t)lo * p;
    return (int32_t)((uint32_t)(t >> 32) + hi * p + ((uint32_t)t >> 31));
#endif
}

/* round_shift(r g, 32 + q) for 0 <= r < 2^15, 0 <= q < 32, where the result is proved to fit
   int32 and |r g| + 2^(31+q) < 2^63: the rounding 2^(31+q) = rh 2^32 + rl (q = 0: rl = 2^31,
   rh = 0; else rl = 0, rh = 2^(q-1)); floor((r g + 2^(31+q)) / 2^32) = r hi + rh + the high
   word of r lo + rl (< 2^64), an int32, then >> q. */
ALWAYS_INLINE int32_t rs64_high(int32_t r, int64_t g, uint32_t rl, uint32_t rh, int q)
{
#if ETHOEDGE_UMLAL
    uint32_t a = rl, b;
    __asm__("mla %[b], %R[g], %[r], %[rh]\n\t"
            "umlal %[a], %[b], %Q[g], %[r]"
            : [a] "+&r"(a), [b] "=&r"(b)
            : [g] "r"(g), [r] "r"(r), [rh] "r"(rh));
    return (int32_t)b >> q;
#else
    const uint32_t lo = (uint32_t)g, hi = (uint32_t)((uint64_t)g >> 32);
    const uint64_t t = (uint64_t)(uint32_t)r * lo + rl;
    return (int32_t)((uint32_t)(t >> 32) + (uint32_t)r * hi + rh) >> q;
#endif
}

/* requant32 for s > 0 (the rounding offset was proved to fit int32) */
static void requant32_rshift(const int32_t *acc, int n, int s, int w, int relu, int16_t *out16,
                             int32_t *out32)
{
    const int32_t top = ((int32_t)1 << (w - 1)) - 1;
    const int32_t lo = relu ? 0 : -top - 1;
    const int32_t rnd = (int32_t)1 << (s - 1);
    int i;
#if ETHOEDGE_DSP
    if (w == 8 && relu && out16) { /* the layers before a GRU or a head: one USAT */
        for (i = 0; i < n; ++i) {
            out16[i] = (int16_t)__usat((acc[i] + rnd) >> s, 7);
        }
        return;
    }
#endif
    for (i = 0; i < n; ++i) {
        int32_t v = (acc[i] + rnd) >> s;
        v = v > top ? top : v < lo ? lo : v;
        if (out16) {
            out16[i] = (int16_t)v;
        } else {
            out32[i] = v;
        }
    }
}

void ethoedge_requant32(const int32_t *acc, int n, int s, int w, int relu, int16_t *out16,
                        int32_t *out32)
{
    const int32_t top = ((int32_t)1 << (w - 1)) - 1;
    const int32_t lo = relu ? 0 : -top - 1;
    int i;
    if (s > 0) {
        requant32_rshift(acc, n, s, w, relu, out16, out32);
        return;
    }
    for (i = 0; i < n; ++i) { /* sat32 before the W-bit saturation changes nothing */
        int32_t v = align_g(acc[i], s);
        v = v > top ? top : v < lo ? lo : v;
        if (out16) {
            out16[i] = (int16_t)v;
        } else {
            out32[i] = v;
        }
    }
}

void ethoedge_requant64(const int64_t *acc, int n, int s, int w, int relu, int16_t *out16,
                        int32_t *out32)
{
    const int32_t top = ((int32_t)1 << (w - 1)) - 1, lo = relu ? 0 : -top - 1;
    int i;
    for (i = 0; i < n; ++i) {
        const int32_t v = s > 0 && s < 64 ? rsat64(acc[i], s)
                                          : ethoedge_sat32(ethoedge_round_shift64(acc[i], s));
        const int32_t o = v > top ? top : v < lo ? lo : v;
        if (out16) {
            out16[i] = (int16_t)o;
        } else {
            out32[i] = o;
        }
    }
}

/* requant64 for 0 < s < 32 where every accumulator is proved to give (v + 2^(s-1)) >> s
   within int32 (the precondition of ethoedge_requant_64_rshift): the rounded shift alone,
   then the W-bit range */
static void requant64_rshift(const int64_t *acc, int n, int s, int w, int relu,
                             int16_t *out16, int32_t *out32)
{
    const int32_t top = ((int32_t)1 << (w - 1)) - 1, lo = relu ? 0 : -top - 1;
    const uint32_t p = (uint32_t)1 << (32 - s);
    int i;
    if (out16) {
        for (i = 0; i < n; ++i) {
            const int32_t v = rs64_low(acc[i], p);
            out16[i] = (int16_t)(v > top ? top : v < lo ? lo : v);
        }
        return;
    }
    for (i = 0; i < n; ++i) {
        const int32_t v = rs64_low(acc[i], p);
        out32[i] = v > top ? top : v < lo ? lo : v;
    }
}

/* ---- GRU gate update: requantise, activations, state update, one pass ---- */

/* act() for a constant W (8 or 16 after inlining): the output rounding and saturation fold
   to constants. */
ALWAYS_INLINE int32_t act_w(int32_t pre, const int16_t *t, const int w)
{
    const int sh = 15 - (w - 1);
    const int32_t u = sat16(pre);
    const int32_t i = (u >> 8) + 128, r = u & 255;
    const int32_t t0 = t[i];
    int32_t y = t0 + (((t[i + 1] - t0) * r + 128) >> 8);
    if (sh > 0) {
        y = (y + (1 << (sh - 1))) >> sh;
        y = y > (1 << (w - 1)) - 1 ? (1 << (w - 1)) - 1 : y; /* only the top end can exceed */
    }
    return y;
}

/* One unit of the general pass (any shifts, any W), shared by the int32 and int64 updates
   (align32 of an int32 accumulator equals align64 of the same value): the contract term by
   term; h' = sat(round_shift((2^(W-1) - z) align(n, f_h - (W-1)) + z h, W - 1), W). */
static COLD int16_t unit_generic(const ethoedge_model_t *m, const int64_t g[6], int32_t h)
{
    const int w = m->word_bits, sgx = m->sh_gx, sgh = m->sh_gh;
    const int32_t r = ethoedge_act(add_sat(align_g(g[0], sgx), align_g(g[3], sgh)),
                                   ethoedge_sigmoid_q15, w);
    const int32_t z = ethoedge_act(add_sat(align_g(g[1], sgx), align_g(g[4], sgh)),
                                   ethoedge_sigmoid_q15, w);
    /* rn = r * (W_hn h + b_hn): exact int64 product, rounded once to the gate format */
    const int32_t rn = align_g((int64_t)r * g[5], m->sh_rn);
    const int32_t n = ethoedge_act(add_sat(align_g(g[2], sgx), rn), ethoedge_tanh_q15, w);
    const int64_t hs = (int64_t)((1 << (w - 1)) - z) * align_g(n, m->sh_n_to_h) + (int64_t)z * h;
    return (int16_t)ethoedge_satw((hs + ((int64_t)1 << (w - 2))) >> (w - 1), w);
}

/* The fast pass: every shift a right shift (or 0; a caller applies left shifts of the gate
   accumulators first), W constant. With 0 <= z <= 2^(W-1) and
   |align(n)|, |h| <= 2^(W-1), the state update (2^(W-1) - z) n + z h is a convex combination
   scaled by 2^(W-1): |.| <= 2^(2W-2) <= 2^30, exact in int32; the rounded result is within
   the W-bit range, so it needs no saturation. */
#if ETHOEDGE_DSP
/* (a b + 2^31) >> 32: SMMULR */
static inline int32_t smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* The DSP form of update32_fast at W = 8 (u <= ETHOEDGE_GRU_BLOCK), in passes with few live
   values each. With mul = 0 every gate shift is a right shift (or 0), (v + 2^(s-1)) >> s.
   With mul = 1 (ethoedge_update_32_lshift, where the exporter proved that no left shift
   saturates) a gate accumulator v is aligned as (v m + r) >> s: a right shift by s > 0 is
   m = 1, r = 2^(s-1); a left shift by k is m = 2^k, r = 0, s = 0 (one MLA and one ASR, as an
   ADD and an ASR would be), inside the passes instead of a saturating copy before them. */
ALWAYS_INLINE int32_t mul8_of(int s, const int mul) /* m */
{
    return mul && s < 0 ? (int32_t)1 << -s : 1;
}

ALWAYS_INLINE int32_t shift8_of(int s, const int mul) /* s */
{
    return mul && s < 0 ? 0 : s;
}

/* Pass 1, called for the rows r (shl = 32 - srn where srn >= 8, see state8_dsp) and z (shl =
   0), the first 2u of gx and gh: n sigmoid gates, shifted left by shl, into g. */
ALWAYS_INLINE void gates8_body(const int32_t *gx, const int32_t *gh, int n, int32_t *g, int sgx,
                               int sgh, int shl, const int mul)
{
    const int32_t mx = mul8_of(sgx, mul), mh = mul8_of(sgh, mul);
    const int32_t rgx = sgx > 0 ? (int32_t)1 << (sgx - 1) : 0;
    const int32_t rgh = sgh > 0 ? (int32_t)1 << (sgh - 1) : 0;
    const int32_t sx = shift8_of(sgx, mul), sh = shift8_of(sgh, mul);
    const int16_t *sig_m = ethoedge_sigmoid_q15 + 128;
    int32_t *const end = g + n;
    for (; g < end; ++g) {
        *g = act8_dsp(__qadd((*gx++ * mx + rgx) >> sx, (*gh++ * mh + rgh) >> sh), sig_m) << shl;
    }
}

static NOINLINE void gates8_dsp(const int32_t *gx, const int32_t *gh, int n, int32_t *g, int sgx,
                                int sgh, int shl)
{
    gates8_body(gx, gh, n, g, sgx, sgh, shl, 0);
}

static NOINLINE void gates8m_dsp(const int32_t *gx, const int32_t *gh, int n, int32_t *g,
                                 int sgx, int sgh, int shl)
{
    gates8_body(gx, gh, n, g, sgx, sgh, shl, 1);
}

/* Pass 2: n and the state. rn = r * (W_hn h + b_hn) rounded by srn: for 8 <= srn <= 32
   (fast = 1) the gate pass stored r 2^(32-srn), below 2^31 as 0 <= r <= 127, and
   (r 2^(32-srn) v + 2^31) >> 32 is exactly (r v + 2^(srn-1)) >> srn: one SMMULR, never
   saturating; else the general form on r. The state update ((2^7 - z) nn + z h + 2^6) >> 7
   is nn + ((z (h - nn) + 2^6) >> 7), nn = align(n, snh). */
ALWAYS_INLINE void state8_dsp(const int32_t *g, const int32_t *gxn, const int32_t *ghn, int u,
                              const int16_t *h, int16_t *hn, int sgx, int srn, int snh,
                              const int fast, const int mul)
{
    const int32_t mx = mul8_of(sgx, mul), sx = shift8_of(sgx, mul);
    const int32_t rgx = sgx > 0 ? (int32_t)1 << (sgx - 1) : 0;
    const int32_t rnh = snh > 0 ? (int32_t)1 << (snh - 1) : 0;
    const int64_t rrn = srn > 0 ? (int64_t)1 << (srn - 1) : 0;
    const int16_t *tanh_m = ethoedge_tanh_q15 + 128;
    const int32_t *gz = g + u;
    int16_t *const end = hn + u;
    for (; hn < end; ++hn) {
        const int32_t z = *gz++;
        const int32_t rn = fast ? smmulr(*g++, *ghn++)
                                : ethoedge_sat32(((int64_t)*g++ * *ghn++ + rrn) >> srn);
        const int32_t n = act8_dsp(__qadd((*gxn++ * mx + rgx) >> sx, rn), tanh_m);
        const int32_t nn = (n + rnh) >> snh;
        *hn = (int16_t)(nn + ((z * (*h++ - nn) + 64) >> 7));
    }
}

ALWAYS_INLINE void update8_body(const int32_t *gx, const int32_t *gh, int u, const int16_t *h,
                                int16_t *hn, int sgx, int sgh, int srn, int snh, const int mul)
{
    int32_t g[2 * ETHOEDGE_GRU_BLOCK]; /* r of the units, then z */
    const int fast = srn >= 8 && srn <= 32;
    if (mul) {
        gates8m_dsp(gx, gh, u, g, sgx, sgh, fast ? 32 - srn : 0);
        gates8m_dsp(gx + u, gh + u, u, g + u, sgx, sgh, 0);
    } else {
        gates8_dsp(gx, gh, u, g, sgx, sgh, fast ? 32 - srn : 0);
        gates8_dsp(gx + u, gh + u, u, g + u, sgx, sgh, 0);
    }
    gx += 2 * u;
    gh += 2 * u;
    if (fast) {
        state8_dsp(g, gx, gh, u, h, hn, sgx, srn, snh, 1, mul);
    } else {
        state8_dsp(g, gx, gh, u, h, hn, sgx, srn, snh, 0, mul);
    }
}

static NOINLINE void update8_dsp(const int32_t *gx, const int32_t *gh, int u, const int16_t *h,
                                 int16_t *hn, int sgx, int sgh, int srn, int snh)
{
    update8_body(gx, gh, u, h, hn, sgx, sgh, srn, snh, 0);
}

static NOINLINE void update8m_dsp(const int32_t *gx, const int32_t *gh, int u, const int16_t *h,
                                  int16_t *hn, int sgx, int sgh, int srn, int snh)
{
    update8_body(gx, gh, u, h, hn, sgx, sgh, srn, snh, 1);
}
#endif

ALWAYS_INLINE void update32_fast(const int32_t *gx, const int32_t *gh, int u, const int16_t *h,
                                 int16_t *hn, int sgx, int sgh, int srn, int snh, const int w)
{
#if ETHOEDGE_DSP
    (void)w; /* 8: every caller's */
    update8_dsp(gx, gh, u, h, hn, sgx, sgh, srn, snh);
#else
    const int32_t rgx = sgx > 0 ? (int32_t)1 << (sgx - 1) : 0;
    const int32_t rgh = sgh > 0 ? (int32_t)1 << (sgh - 1) : 0;
    const int32_t rnh = snh > 0 ? (int32_t)1 << (snh - 1) : 0;
    const int64_t rrn = srn > 0 ? (int64_t)1 << (srn - 1) : 0;
    const int32_t one = (int32_t)1 << (w - 1), half = (int32_t)1 << (w - 2);
    const int32_t *gxz = gx + u, *gxn = gx + 2 * u, *ghz = gh + u, *ghn = gh + 2 * u;
    int j;
    for (j = 0; j < u; ++j) {
        const int32_t r = act_w(add_sat((gx[j] + rgx) >> sgx, (gh[j] + rgh) >> sgh),
                                ethoedge_sigmoid_q15, w);
        const int32_t z = act_w(add_sat((gxz[j] + rgx) >> sgx, (ghz[j] + rgh) >> sgh),
                                ethoedge_sigmoid_q15, w);
        const int32_t rn = ethoedge_sat32(((int64_t)r * ghn[j] + rrn) >> srn);
        const int32_t n = act_w(add_sat((gxn[j] + rgx) >> sgx, rn), ethoedge_tanh_q15, w);
        const int32_t hs = (one - z) * ((n + rnh) >> snh) + z * h[j];
        hn[j] = (int16_t)((hs + half) >> (w - 1));
    }
#endif
}

ALWAYS_INLINE void update64_fast(const int64_t *gx, const int64_t *gh, int u, const int16_t *h,
                                 int16_t *hn, int sgx, int sgh, int srn, int snh, const int w)
{
    const int32_t rnh = snh > 0 ? (int32_t)1 << (snh - 1) : 0;
    const int32_t one = (int32_t)1 << (w - 1), half = (int32_t)1 << (w - 2);
    const int64_t *gxz = gx + u, *gxn = gx + 2 * u, *ghz = gh + u, *ghn = gh + 2 * u;
    int j;
    for (j = 0; j < u; ++j) { /* 0 < sgx, sgh, srn < 64 here */
        const int32_t r = act_w(add_sat(rsat64(gx[j], sgx), rsat64(gh[j], sgh)),
                                ethoedge_sigmoid_q15, w);
        const int32_t z = act_w(add_sat(rsat64(gxz[j], sgx), rsat64(ghz[j], sgh)),
                                ethoedge_sigmoid_q15, w);
        const int32_t rn = rsat64((int64_t)r * ghn[j], srn);
        const int32_t n = act_w(add_sat(rsat64(gxn[j], sgx), rn), ethoedge_tanh_q15, w);
        const int32_t hs = (one - z) * ((n + rnh) >> snh) + z * h[j];
        hn[j] = (int16_t)((hs + half) >> (w - 1));
    }
}

/* The W = 16 fast pass without saturation in align (the precondition of
   ethoedge_update_64_rshift, proved by the exporter): 0 < sgx, sgh < 32, 32 <= srn < 64,
   snh >= 0, u <= ETHOEDGE_GRU_BLOCK, and every gate value (v + 2^(s-1)) >> s of the pass
   within int32, so align is the rounded shift alone. Two loops, each with few enough live
   values for the registers: the sigmoid gates (rows r and z, the first 2u of gx and gh),
   then n and the state. */
/* act() at W = 16 (no output rounding): tm = table + 128, the entry of 0 */
ALWAYS_INLINE int32_t act16(int32_t pre, const int16_t *tm)
{
#if ETHOEDGE_DSP
    return act16_dsp(pre, tm);
#else
    const int32_t u = sat16(pre);
    const int16_t *e = tm + (u >> 8);
    const int32_t t0 = e[0];
    return t0 + (((e[1] - t0) * (u & 255) + 128) >> 8);
#endif
}

/* n and the state of u units (the second loop of update64_rshift); snh constant 0 or not */
ALWAYS_INLINE void update64_rshift_n(const int32_t *g, const int64_t *gx, const int64_t *gh,
                                     int u, const int16_t *h, int16_t *hn, uint32_t px,
                                     int srn, int snh)
{
    const int q = srn - 32;
    const uint32_t rl = q == 0 ? 0x80000000u : 0, rh = q == 0 ? 0 : (uint32_t)1 << (q - 1);
    const int32_t rnh = snh > 0 ? (int32_t)1 << (snh - 1) : 0;
    const int16_t *tanh_m = ethoedge_tanh_q15 + 128;
    int j;
    for (j = 0; j < u; ++j) {
        const int32_t r = g[j], z = g[u + j];
        const int32_t rn = rs64_high(r, gh[j], rl, rh, q);
        const int32_t n = act16(add_sat(rs64_low(gx[j], px), rn), tanh_m);
        const int32_t hs = (32768 - z) * ((n + rnh) >> snh) + z * h[j];
        hn[j] = (int16_t)((hs + 16384) >> 15);
    }
}

static void update64_rshift(const int64_t *gx, const int64_t *gh, int u, const int16_t *h,
                            int16_t *hn, int sgx, int sgh, int srn, int snh)
{
    const uint32_t px = (uint32_t)1 << (32 - sgx), ph = (uint32_t)1 << (32 - sgh);
    const int16_t *sig_m = ethoedge_sigmoid_q15 + 128;
    int32_t g[2 * ETHOEDGE_GRU_BLOCK]; /* r of the units, then z */
    int32_t *pg = g, *const end = g + 2 * u;
    for (; pg < end; ++pg) { /* rows r and z of gx and gh are the first 2u */
        *pg = act16(add_sat(rs64_low(*gx++, px), rs64_low(*gh++, ph)), sig_m);
    }
    if (snh == 0) { /* the common case */
        update64_rshift_n(g, gx, gh, u, h, hn, px, srn, 0);
    } else {
        update64_rshift_n(g, gx, gh, u, h, hn, px, srn, snh);
    }
}

/* out[i] = sat32(v[i] << k) for k > 0 (ethoedge_align32(v, -k)) by two comparisons with the
   largest values that survive the shift: v > INT32_MAX >> k saturates up, v < INT32_MIN >> k
   down, any other v shifts exactly (k >= 32 takes the 64-bit form). */
static void shl_sat32(const int32_t *v, int n, int k, int32_t *out)
{
    int i;
    if (k >= 32) {
        for (i = 0; i < n; ++i) {
            out[i] = ethoedge_align32(v[i], -k);
        }
        return;
    }
    {
        const int32_t hi = INT32_MAX >> k, lo = INT32_MIN >> k;
        for (i = 0; i < n; ++i) {
            const int32_t x = v[i];
            out[i] = x > hi ? INT32_MAX : x < lo ? INT32_MIN : (int32_t)((uint32_t)x << k);
        }
    }
}

/* The W = 8 fast pass with any sign of sgx and sgh: a left shift of the gate accumulators (a
   model whose products carry fewer fraction bits than the gates, common at W = 8) is applied
   first, with its saturation, into a copy; the fast pass then runs with a shift of 0: the same
   integers as align() term by term. The n rows of gh (used in r * n) are copied unshifted.
   Needs srn, snh >= 0 and u <= ETHOEDGE_GRU_BLOCK. */
static void update32_fast8(const ethoedge_model_t *m, const int32_t *gx, const int32_t *gh,
                           int u, const int16_t *h, int16_t *hn)
{
    const int sgx = m->sh_gx, sgh = m->sh_gh;
    int32_t tx[3 * ETHOEDGE_GRU_BLOCK], th[3 * ETHOEDGE_GRU_BLOCK];
    const int32_t *px = gx, *ph = gh;
    int j;
    if (sgx < 0) {
        shl_sat32(gx, 3 * u, -sgx, tx);
        px = tx;
    }
    if (sgh < 0) {
        shl_sat32(gh, 2 * u, -sgh, th);
        for (j = 2 * u; j < 3 * u; ++j) {
            th[j] = gh[j];
        }
        ph = th;
    }
    update32_fast(px, ph, u, h, hn, sgx > 0 ? sgx : 0, sgh > 0 ? sgh : 0, m->sh_rn,
                  m->sh_n_to_h, 8);
}

void ethoedge_gru_update32(const ethoedge_model_t *m, const int32_t *gx, const int32_t *gh,
                           int u, const int16_t *h, int16_t *hn)
{
    int j;
    if (m->word_bits == 8 && m->sh_rn >= 0 && m->sh_n_to_h >= 0 && u <= ETHOEDGE_GRU_BLOCK) {
        update32_fast8(m, gx, gh, u, h, hn);
        return;
    }
    for (j = 0; j < u; ++j) { /* general shifts */
        const int64_t g[6] = {gx[j], gx[u + j], gx[2 * u + j], gh[j], gh[u + j], gh[2 * u + j]};
        hn[j] = unit_generic(m, g, h[j]);
    }
}

void ethoedge_gru_update64(const ethoedge_model_t *m, const int64_t *gx, const int64_t *gh,
                           int u, const int16_t *h, int16_t *hn)
{
    const int w = m->word_bits, sgx = m->sh_gx, sgh = m->sh_gh, srn = m->sh_rn;
    const int snh = m->sh_n_to_h;
    int j;
    if (w == 16 && sgx > 0 && sgx < 64 && sgh > 0 && sgh < 64 && srn > 0 && srn < 64
        && snh >= 0) {
        update64_fast(gx, gh, u, h, hn, sgx, sgh, srn, snh, 16);
        return;
    }
    for (j = 0; j < u; ++j) {
        const int64_t g[6] = {gx[j], gx[u + j], gx[2 * u + j], gh[j], gh[u + j], gh[2 * u + j]};
        hn[j] = unit_generic(m, g, h[j]);
    }
}

/* ---- layers: the op functions a model's kernel set names ---- */

void ethoedge_layer_s8(const void *w, const void *b, const int16_t *x, int rows, int cols,
                       void *out, int32_t *dot, int use_dsp)
{
    (void)dot;
    ethoedge_matvec_s8((const int8_t *)w, (const int32_t *)b, x, rows, cols, (int32_t *)out,
                       use_dsp);
}

void ethoedge_layer_s8_tiles(const void *w, const void *b, const int16_t *x, int rows, int cols,
                             void *out, int32_t *dot, int use_dsp)
{
#if ETHOEDGE_DSP
    (void)dot;
    (void)use_dsp;
    matvec_s8_tiles((const int8_t *)w, (const int32_t *)b, x, rows, cols, (int32_t *)out);
#else
    ethoedge_layer_s8(w, b, x, rows, cols, out, dot, use_dsp);
#endif
}

/* The layer in the pair layout: the SMLAD pair tiles in a DSP build (their precondition: a
   bias, cols a multiple of 8, or of 16 for ethoedge_layer_s8_pairs16, whose loop takes 4
   groups of 4 columns at a time; word-aligned arrays, whatever use_dsp says), plain C
   elsewhere. Two op functions, so that a firmware links only the loop its models use. */
void ethoedge_layer_s8_pairs(const void *w, const void *b, const int16_t *x, int rows, int cols,
                             void *out, int32_t *dot, int use_dsp)
{
    (void)dot;
    (void)use_dsp;
#if ETHOEDGE_DSP && ETHOEDGE_UMLAL
    tiles_s8_pairs2((const int8_t *)w, (const int32_t *)b, x, rows >> 2, cols >> 2,
                    (int32_t *)out);
#else
    pairs_c_s8((const int8_t *)w, (const int32_t *)b, x, rows, cols, (int32_t *)out);
#endif
}

void ethoedge_layer_s8_pairs16(const void *w, const void *b, const int16_t *x, int rows, int cols,
                               void *out, int32_t *dot, int use_dsp)
{
#if ETHOEDGE_DSP && ETHOEDGE_UMLAL
    (void)dot;
    (void)use_dsp;
    tiles_s8_pairs4((const int8_t *)w, (const int32_t *)b, x, rows >> 2, cols >> 2,
                    (int32_t *)out);
#else
    ethoedge_layer_s8_pairs(w, b, x, rows, cols, out, dot, use_dsp);
#endif
}

/* The layer in the pair layout with exactly 32 columns (H = M = 32): tiles_s8_pairs8 in a DSP
   build, ethoedge_layer_s8_pairs elsewhere */
void ethoedge_layer_s8_pairs32(const void *w, const void *b, const int16_t *x, int rows, int cols,
                               void *out, int32_t *dot, int use_dsp)
{
#if ETHOEDGE_DSP && ETHOEDGE_UMLAL
    (void)cols;
    (void)dot;
    (void)use_dsp;
    tiles_s8_pairs8((const int8_t *)w, (const int32_t *)b, x, rows >> 2, 8, (int32_t *)out);
#else
    ethoedge_layer_s8_pairs(w, b, x, rows, cols, out, dot, use_dsp);
#endif
}

/* The input layers of 3 and 6 columns: their assembly tiles in a DSP build (a separate op,
   so that a firmware links only the one its models use), the tiles layer elsewhere */
void ethoedge_layer_s8_in3(const void *w, const void *b, const int16_t *x, int rows, int cols,
                           void *out, int32_t *dot, int use_dsp)
{
#if ETHOEDGE_DSP && ETHOEDGE_UMLAL
    (void)cols;
    (void)dot;
    (void)use_dsp;
    tiles_s8_cols3((const int8_t *)w, (const int32_t *)b, x, rows >> 2, (int32_t *)out);
#else
    ethoedge_layer_s8_tiles(w, b, x, rows, cols, out, dot, use_dsp);
#endif
}

void ethoedge_layer_s8_in6(const void *w, const void *b, const int16_t *x, int rows, int cols,
                           void *out, int32_t *dot, int use_dsp)
{
#if ETHOEDGE_DSP && ETHOEDGE_UMLAL
    (void)cols;
    (void)dot;
    (void)use_dsp;
    tiles_s8_cols6((const int8_t *)w, (const int32_t *)b, x, rows >> 2, (int32_t *)out);
#else
    ethoedge_layer_s8_tiles(w, b, x, rows, cols, out, dot, use_dsp);
#endif
}

/* The input layer and its requantisation at W = 8 with ReLU (s = sh_a > 0) of a model whose
   GRU op is fused: on the M4 the 3- or 6-column tiles requantise their sums (k = the model's
   gru8->ka), elsewhere the layer op and the requantisation, the same integers. */
void ethoedge_input_s8_in3_relu8(const ethoedge_model_t *m, const int16_t *x,
                                 const ethoedge_work_t *work)
{
#if ETHOEDGE_GRU_FUSED
    tiles_s8_cols3_a8((const int8_t *)m->w_inp, (const int32_t *)m->b_inp, x, m->hidden >> 2,
                      work->a, m->gru8->ka);
#else
    ethoedge_layer_s8_in3(m->w_inp, m->b_inp, x, m->hidden, 3, work->acc, work->dot, 1);
    ethoedge_requant_32_rshift(work->acc, m->hidden, m->sh_a, 8, 1, work->a, 0);
#endif
}

void ethoedge_input_s8_in6_relu8(const ethoedge_model_t *m, const int16_t *x,
                                 const ethoedge_work_t *work)
{
#if ETHOEDGE_GRU_FUSED
    tiles_s8_cols6_a8((const int8_t *)m->w_inp, (const int32_t *)m->b_inp, x, m->hidden >> 2,
                      work->a, m->gru8->ka);
#else
    ethoedge_layer_s8_in6(m->w_inp, m->b_inp, x, m->hidden, 6, work->acc, work->dot, 1);
    ethoedge_requant_32_rshift(work->acc, m->hidden, m->sh_a, 8, 1, work->a, 0);
#endif
}

void ethoedge_layer_s8_wide(const void *w, const void *b, const int16_t *x, int rows, int cols,
                            void *out, int32_t *dot, int use_dsp)
{
    ethoedge_matvec_s8_wide((const int8_t *)w, (const int64_t *)b, x, rows, cols,
                            (int64_t *)out, dot, use_dsp);
}

void ethoedge_layer_s16(const void *w, const void *b, const int16_t *x, int rows, int cols,
                        void *out, int32_t *dot, int use_dsp)
{
    (void)dot;
    ethoedge_matvec_s16((const int16_t *)w, (const int64_t *)b, x, rows, cols, (int64_t *)out,
                        use_dsp);
}

void ethoedge_requant_32(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                         int32_t *out32)
{
    ethoedge_requant32((const int32_t *)acc, n, s, w, relu, out16, out32);
}

void ethoedge_requant_32_rshift(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                                int32_t *out32)
{
    requant32_rshift((const int32_t *)acc, n, s, w, relu, out16, out32);
}

void ethoedge_requant_64(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                         int32_t *out32)
{
    ethoedge_requant64((const int64_t *)acc, n, s, w, relu, out16, out32);
}

void ethoedge_requant_64_rshift(const void *acc, int n, int s, int w, int relu, int16_t *out16,
                                int32_t *out32)
{
    requant64_rshift((const int64_t *)acc, n, s, w, relu, out16, out32);
}

void ethoedge_update_32(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                        const int16_t *h, int16_t *hn)
{
    ethoedge_gru_update32(m, (const int32_t *)gx, (const int32_t *)gh, u, h, hn);
}

void ethoedge_update_32_fast(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                             const int16_t *h, int16_t *hn)
{
    update32_fast8(m, (const int32_t *)gx, (const int32_t *)gh, u, h, hn);
}

void ethoedge_update_32_lshift(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                               const int16_t *h, int16_t *hn)
{
#if ETHOEDGE_DSP
    update8m_dsp((const int32_t *)gx, (const int32_t *)gh, u, h, hn, m->sh_gx, m->sh_gh, m->sh_rn,
                 m->sh_n_to_h);
#else
    update32_fast8(m, (const int32_t *)gx, (const int32_t *)gh, u, h, hn);
#endif
}

void ethoedge_update_32_rshift(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                               const int16_t *h, int16_t *hn)
{
    update32_fast((const int32_t *)gx, (const int32_t *)gh, u, h, hn, m->sh_gx, m->sh_gh,
                  m->sh_rn, m->sh_n_to_h, 8);
}

void ethoedge_update_64(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                        const int16_t *h, int16_t *hn)
{
    ethoedge_gru_update64(m, (const int64_t *)gx, (const int64_t *)gh, u, h, hn);
}

void ethoedge_update_64_rshift(const ethoedge_model_t *m, const void *gx, const void *gh, int u,
                               const int16_t *h, int16_t *hn)
{
    update64_rshift((const int64_t *)gx, (const int64_t *)gh, u, h, hn, m->sh_gx, m->sh_gh,
                    m->sh_rn, m->sh_n_to_h);
}

const ethoedge_ops_t ethoedge_ops_s8 = {ethoedge_layer_s8, ethoedge_requant_32,
                                        ethoedge_update_32, ethoedge_layer_s8,
                                        ethoedge_gru_blocks};
const ethoedge_ops_t ethoedge_ops_s8_wide = {ethoedge_layer_s8_wide, ethoedge_requant_64,
                                             ethoedge_update_64, ethoedge_layer_s8_wide,
                                             ethoedge_gru_blocks};
const ethoedge_ops_t ethoedge_ops_s16 = {ethoedge_layer_s16, ethoedge_requant_64,
                                         ethoedge_update_64, ethoedge_layer_s16,
                                         ethoedge_gru_blocks};

typedef void (*ethoedge_update_fn)(const ethoedge_model_t *m, const void *gx, const void *gh,
                                   int u, const int16_t *h, int16_t *hn);

/* The GRU of one step, ETHOEDGE_GRU_BLOCK units at a time: the gate accumulators of the block
   by the model's layer op (int32 or int64 buffer), then update */
static void gru_blocks_with(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                            const ethoedge_work_t *work, ethoedge_update_fn update)
{
    const ethoedge_ops_t *ops = m->ops;
    const int hid = m->hidden;
    const int esz = m->word_bits == 16 ? 2 : 1; /* bytes per weight */
    const int asz = m->acc64 ? 8 : 4;           /* bytes per accumulator */
    int j0;
    for (j0 = 0; j0 < hid; j0 += ETHOEDGE_GRU_BLOCK) {
        const int u = hid - j0 < ETHOEDGE_GRU_BLOCK ? hid - j0 : ETHOEDGE_GRU_BLOCK;
        const long off = 3L * j0 * hid * esz; /* this block's rows */
        const char *wih = (const char *)m->w_ih + off, *whh = (const char *)m->w_hh + off;
        const char *bih = (const char *)m->b_ih + 3L * j0 * asz;
        const char *bhh = (const char *)m->b_hh + 3L * j0 * asz;
        char *gx = (char *)work->acc, *gh = gx + 3L * u * asz;
        ops->layer(wih, bih, a, 3 * u, hid, gx, work->dot, m->use_dsp);
        ops->layer(whh, bhh, h, 3 * u, hid, gh, work->dot, m->use_dsp);
        update(m, gx, gh, u, h + j0, work->hn + j0);
    }
    memcpy(h, work->hn, (size_t)hid * sizeof h[0]);
}

void ethoedge_gru_blocks(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                         const ethoedge_work_t *work)
{
    gru_blocks_with(m, a, h, work, m->ops->update);
}

/* The header's ETHOEDGE_GRU_FUSED (which the model files see) must say where the fused GRU
   ops below run their own passes */
#if ETHOEDGE_GRU_FUSED != (ETHOEDGE_DSP && ETHOEDGE_UMLAL)
#error "ETHOEDGE_GRU_FUSED differs from the kernels' DSP path"
#endif

#if ETHOEDGE_GRU_FUSED
#if ETHOEDGE_GRU_BLOCK != 8
#error "gates8_pass_r/_lx take the 8 units of a block (gh 24 words after gx)"
#endif
/* The sigmoid gates of one block's 8 rows r (shl = 32 - sh_rn) or z (shl = 0), in place:
   g[j] = act8(qadd(align(g[j]), align(g[j + 24]))) << shl, j = 0..7 (the gh rows 24 words
   on), two gates per LDRD and STRD, no loop. k (the model's gru8 constants): the sigmoid
   table's entry of 0, 65535, 256, 32896 (the interpolation's pair and rounding), then for the
   right-shift form (gates8_pass_r) 2^(sgx-1), sgx, 2^(sgh-1), sgh (a rounding term of 0 for a
   shift of 0) and for the left-shift form (gates8_pass_lx) -, -sgx (the left shift of gx),
   2^(sgh-1), sgh. Every register in use: the constants in r1-r8, shl in r9, two gates' gx and
   gh values in r10, r11, ip, lr. */
#define ETHOEDGE_GATES_PASS(alignx)                                                            \
    __asm__ volatile(                                                                          \
        ".macro sig a, b\n\t" alignx                                                           \
        "add \\b, \\b, r7\n\t"                                                                 \
        "asr \\b, \\b, r8\n\t"                                                                 \
        "qadd \\a, \\a, \\b\n\t"                                                             \
        "ssat \\a, #16, \\a\n\t"                                                               \
        "asr \\b, \\a, #8\n\t"                                                                 \
        "uxtb \\a, \\a\n\t"                                                                    \
        "ldr \\b, [r1, \\b, lsl #1]\n\t"                                                       \
        "mla \\a, \\a, r2, r3\n\t"                                                             \
        "smlad \\a, \\b, \\a, r4\n\t"                                                        \
        "ssat \\a, #8, \\a, asr #16\n\t"                                                       \
        "lsl \\a, \\a, r9\n\t"                                                                 \
        ".endm\n\t"                                                                            \
        ".macro pair off\n\t"                                                                  \
        "ldrd r10, r11, [r0, #\\off]\n\t"                                                      \
        "ldrd ip, lr, [r0, #\\off + 96]\n\t"                                                   \
        "sig r10, ip\n\t"                                                                      \
        "sig r11, lr\n\t"                                                                      \
        "strd r10, r11, [r0, #\\off]\n\t"                                                      \
        ".endm\n\t"                                                                            \
        "push {r4-r11, lr}\n\t"                                                                \
        "mov r9, r2\n\t"                                                                       \
        "ldm r1, {r1-r8}\n\t"                                                                  \
        "pair 0\n\t"                                                                           \
        "pair 8\n\t"                                                                           \
        "pair 16\n\t"                                                                          \
        "pair 24\n\t"                                                                          \
        "pop {r4-r11, pc}\n\t"                                                                 \
        ".purgem pair\n\t"                                                                     \
        ".purgem sig\n\t")

#define ARG __attribute__((unused))
__attribute__((naked, noinline)) static void gates8_pass_r(ARG int32_t *g, ARG const int32_t *k,
                                                           ARG int shl)
{
    ETHOEDGE_GATES_PASS("add \\a, \\a, r5\n\tasr \\a, \\a, r6\n\t");
}

__attribute__((naked, noinline)) static void gates8_pass_lx(ARG int32_t *g, ARG const int32_t *k,
                                                            ARG int shl)
{
    ETHOEDGE_GATES_PASS("lsl \\a, \\a, r6\n\t");
}

/* n and the state of one block's 8 units (sh_n_to_h = 0, 8 <= sh_rn <= 32): with g the
   block's gx (r shifted for SMMULR at g[j], z at g[8 + j], the n rows at g[16 + j]) and its
   gh 24 words on (the n rows at g[40 + j]), rn = SMMULR(r, gh_n), n = act8(qadd(align(gx_n),
   rn)) by the tanh table, hn[j] = n + ((z (ho[j] - n) + 64) >> 7). k: the tanh table's entry
   of 0, 65535, 256, 32896, then 2^(sgx-1) and sgx (state8_pass_r) or -, -sgx
   (state8_pass_lx). 4 units per iteration: 21 instructions per unit (20 in the left-shift
   form) and the loop's 2 per 4; the constants in r4-r9, g, its end, ho, hn in r0-r3. */
#define ETHOEDGE_STATE_PASS(alignx)                                                            \
    __asm__ volatile(                                                                          \
        ".macro unit\n\t"                                                                      \
        "ldr r10, [r0, #64]\n\t"                                                               \
        "ldr r11, [r0, #160]\n\t"                                                              \
        "ldr ip, [r0], #4\n\t"                                                                 \
        "smmulr r11, ip, r11\n\t" alignx                                                       \
        "qadd r10, r10, r11\n\t"                                                               \
        "ssat r10, #16, r10\n\t"                                                               \
        "asr r11, r10, #8\n\t"                                                                 \
        "uxtb r10, r10\n\t"                                                                    \
        "ldr r11, [r4, r11, lsl #1]\n\t"                                                       \
        "mla r10, r10, r5, r6\n\t"                                                             \
        "smlad r10, r11, r10, r7\n\t"                                                          \
        "ssat r10, #8, r10, asr #16\n\t"                                                       \
        "ldr ip, [r0, #28]\n\t"                                                                \
        "ldrsh lr, [r2], #2\n\t"                                                               \
        "sub lr, lr, r10\n\t"                                                                  \
        "mul lr, ip, lr\n\t"                                                                   \
        "add lr, lr, #64\n\t"                                                                  \
        "add r10, r10, lr, asr #7\n\t"                                                         \
        "strh r10, [r3], #2\n\t"                                                               \
        ".endm\n\t"                                                                            \
        "push {r4-r11, lr}\n\t"                                                                \
        "ldm r1, {r4-r9}\n\t"                                                                  \
        "add r1, r0, #32\n\t"                                                                  \
        "1:\n\t"                                                                               \
        "unit\n\t"                                                                             \
        "unit\n\t"                                                                             \
        "unit\n\t"                                                                             \
        "unit\n\t"                                                                             \
        "cmp r0, r1\n\t"                                                                       \
        "bne 1b\n\t"                                                                           \
        "pop {r4-r11, pc}\n\t"                                                                 \
        ".purgem unit\n\t")

__attribute__((naked, noinline)) static void state8_pass_r(ARG const int32_t *g,
                                                           ARG const int32_t *k,
                                                           ARG const int16_t *ho, ARG int16_t *hn)
{
    ETHOEDGE_STATE_PASS("add r10, r10, r8\n\tasr r10, r10, r9\n\t");
}

__attribute__((naked, noinline)) static void state8_pass_lx(ARG const int32_t *g,
                                                            ARG const int32_t *k,
                                                            ARG const int16_t *ho, ARG int16_t *hn)
{
    ETHOEDGE_STATE_PASS("lsl r10, r10, r9\n\t");
}
#undef ETHOEDGE_STATE_PASS

/* d[0..n) = s[0..n), n a multiple of 8 int16 (n >= 8), word-aligned: 16 bytes per LDM/STM */
__attribute__((naked, noinline)) static void copy8x(ARG int16_t *d, ARG const int16_t *s,
                                                    ARG int n)
{
    __asm__ volatile("push {r4-r7}\n\t"
                     "1:\n\t"
                     "ldmia r1!, {r4, r5, r6, r7}\n\t"
                     "stmia r0!, {r4, r5, r6, r7}\n\t"
                     "subs r2, r2, #8\n\t"
                     "bne 1b\n\t"
                     "pop {r4-r7}\n\t"
                     "bx lr\n\t");
}
#undef ARG
#undef ETHOEDGE_GATES_PASS

typedef void (*ethoedge_tiles_fn)(const int8_t *w, const int32_t *bias, const int16_t *x,
                                  int ntiles, int groups, int32_t *out);

/* ethoedge_gru_blocks for the layer ethoedge_layer_s8_pairs16 or _pairs32 (tiles: their pair
   tiles) and the update ethoedge_update_32_rshift (left = 0) or _lshift (left = 1: with
   8 <= sh_rn = sh_gh + 7, only the gx values can need a left shift) with
   8 <= sh_rn <= 32 and sh_n_to_h = 0, in one function: per block the two mat-vecs by the
   pair tiles, the sigmoid gates (r shifted for SMMULR, then z) written over their own
   accumulators, n and the state; the shifts and constants once per step instead of once per
   call of each op. H is a multiple of 16, so every block holds ETHOEDGE_GRU_BLOCK units. */
ALWAYS_INLINE void gru8_pairs(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                              const ethoedge_work_t *work, ethoedge_tiles_fn tiles,
                              const int left)
{
    enum { U = ETHOEDGE_GRU_BLOCK };
    const int hid = m->hidden, groups = hid >> 2;
    const int shl = 32 - m->sh_rn;
    const long stride = 3L * U * hid; /* a block's weight bytes */
    const int8_t *wih = (const int8_t *)m->w_ih, *whh = (const int8_t *)m->w_hh;
    const int32_t *bih = (const int32_t *)m->b_ih, *bhh = (const int32_t *)m->b_hh;
    int32_t *const gx = (int32_t *)work->acc, *const gh = gx + 3 * U;
    int16_t *hn = work->hn, *const end = work->hn + hid;
    const int16_t *ho = h;
    const int32_t *kc = (const int32_t *)(const void *)m->gru8;      /* sig, ks */
    const int32_t *ks = (const int32_t *)(const void *)&m->gru8->tanh; /* tanh, kt */
    for (; hn < end; hn += U, ho += U) {
        tiles(wih, bih, a, 3 * U / 4, groups, gx);
        tiles(whh, bhh, h, 3 * U / 4, groups, gh);
        wih += stride;
        whh += stride;
        bih += 3 * U;
        bhh += 3 * U;
        if (left) {
            gates8_pass_lx(gx, kc, shl);   /* r */
            gates8_pass_lx(gx + U, kc, 0); /* z */
            state8_pass_lx(gx, ks, ho, hn);
        } else {
            gates8_pass_r(gx, kc, shl);
            gates8_pass_r(gx + U, kc, 0);
            state8_pass_r(gx, ks, ho, hn);
        }
    }
    copy8x(h, work->hn, hid);
}

static NOINLINE void gru8_pairs_r(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                                  const ethoedge_work_t *work, ethoedge_tiles_fn tiles)
{
    gru8_pairs(m, a, h, work, tiles, 0);
}

static NOINLINE void gru8_pairs_l(const ethoedge_model_t *m, const int16_t *a, int16_t *h,
                                  const ethoedge_work_t *work, ethoedge_tiles_fn tiles)
{
    gru8_pairs(m, a, h, work, tiles, 1);
}
#define ETHOEDGE_GRU_OP(name, body, tiles, update)                                             \
    void name(const ethoedge_model_t *m, const int16_t *a, int16_t *h,                          \
              const ethoedge_work_t *work)                                                      \
    {                                                                                           \
        body(m, a, h, work, tiles);                                                             \
    }
#else
/* block by block with the update op these ops stand for, named here: a model file built where
   ETHOEDGE_GRU_FUSED is 1 leaves its table's update op out (0) */
#define ETHOEDGE_GRU_OP(name, body, tiles, update)                                             \
    void name(const ethoedge_model_t *m, const int16_t *a, int16_t *h,                          \
              const ethoedge_work_t *work)                                                      \
    {                                                                                           \
        gru_blocks_with(m, a, h, work, update);                                                 \
    }
#endif
ETHOEDGE_GRU_OP(ethoedge_gru_s8_pairs16_rshift, gru8_pairs_r, tiles_s8_pairs4,
                ethoedge_update_32_rshift)
ETHOEDGE_GRU_OP(ethoedge_gru_s8_pairs16_lshift, gru8_pairs_l, tiles_s8_pairs4,
                ethoedge_update_32_lshift)
ETHOEDGE_GRU_OP(ethoedge_gru_s8_pairs32_rshift, gru8_pairs_r, tiles_s8_pairs8,
                ethoedge_update_32_rshift)
ETHOEDGE_GRU_OP(ethoedge_gru_s8_pairs32_lshift, gru8_pairs_l, tiles_s8_pairs8,
                ethoedge_update_32_lshift)
#undef ETHOEDGE_GRU_OP

/* The input stage and the input layer of one step: work->a (H) */
static NOINLINE void step_input(const ethoedge_model_t *m, int16_t *lp, int first,
                                const int16_t x[3], const ethoedge_work_t *work)
{
    const ethoedge_ops_t *ops = m->ops;
    const int hid = m->hidden, w = m->word_bits;
    int16_t xin[6] ETHOEDGE_ALIGN4; /* the 6-input layer loads x by words */
    const int16_t *in = x;
    int c;
    if (m->input_stage != 0) {
        /* static/dynamic split: s = x at the window's first sample, then
           s += round_shift(x - s, k); inputs: sat16(x - s) per axis, then s per axis */
        const int k = m->static_shift;
        for (c = 0; c < 3; ++c) {
            int32_t d;
            if (first) {
                lp[c] = x[c];
            } else {
                d = (int32_t)x[c] - lp[c];
                lp[c] = (int16_t)(lp[c] + ((d + (1 << (k - 1))) >> k));
            }
            d = (int32_t)x[c] - lp[c];
            xin[c] = (int16_t)(d > 32767 ? 32767 : d < -32768 ? -32768 : d);
            if (m->input_stage == 2) {
                xin[3 + c] = lp[c];
            }
        }
        in = xin;
    }
    /* a = relu(W_in' x + b_in') */
    if (m->gru8 && m->gru8->input) { /* the layer and its requantisation in one pass */
        m->gru8->input(m, in, work);
        return;
    }
    ops->layer_in(m->w_inp, m->b_inp, in, hid, m->n_inputs, work->acc, work->dot, m->use_dsp);
    ops->requant(work->acc, hid, m->sh_a, w, 1, work->a, 0);
}

void ethoedge_step(const ethoedge_model_t *m, int16_t *h, int16_t *lp, int first,
                   const int16_t x[3], const ethoedge_work_t *work)
{
    step_input(m, lp, first, x, work); /* its frame is gone before the GRU's (a tail call) */
    m->ops->gru(m, work->a, h, work);
}

void ethoedge_head(const ethoedge_model_t *m, const int16_t *h, int32_t *logits,
                   const ethoedge_work_t *work)
{
    const ethoedge_ops_t *ops = m->ops;
    /* m = relu(W_1 h + b_1), into work->a (it holds max(H, M) values) */
    ops->layer(m->w_mlp, m->b_mlp, h, m->mlp_hidden, m->hidden, work->acc, work->dot,
               m->use_dsp);
    ops->requant(work->acc, m->mlp_hidden, m->sh_m, m->word_bits, 1, work->a, 0);
    /* logits = W_2 m + b_2 */
    ops->layer(m->w_out, m->b_out, work->a, m->n_classes, m->mlp_hidden, work->acc, work->dot,
               m->use_dsp);
    ops->requant(work->acc, m->n_classes, m->sh_logits, m->word_bits, 0, 0, logits);
}

int ethoedge_argmax(const int32_t *v, int n)
{
    int j, best = 0;
    for (j = 1; j < n; ++j) {
        if (v[j] > v[best]) {
            best = j;
        }
    }
    return best;
}

/* ---- orientation calibration (ethoedge.quantize.orient) ---- */

/* round(sqrt(v)), halves up: the bit-by-bit integer square root, then one up where
   v > r^2 + r (sqrt(v) >= r + 1/2) */
static COLD uint32_t isqrt_round(uint32_t v)
{
    uint32_t r = 0, bit = (uint32_t)1 << 30;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return v > r ? r + 1 : r; /* v is now the remainder v0 - r^2 */
}

/* num / den rounded to nearest, halves away from zero, for 0 < den < 2^62 and a quotient
   below 2^17 (|num| < 2^62): shift and subtract, no library division */
static COLD int32_t div_round(int64_t num, int64_t den)
{
    const uint64_t d = (uint64_t)den;
    uint64_t r = (uint64_t)(num < 0 ? -num : num) + (d >> 1);
    int32_t q = 0;
    int b;
    for (b = 16; b >= 0; --b) {
        if ((r >> b) >= d) { /* r >= d 2^b */
            r -= d << b;
            q |= (int32_t)1 << b;
        }
    }
    return num < 0 ? -q : q;
}

COLD void ethoedge_orientation(const int16_t mean[3], int axis, int sign, int16_t rot[9])
{
    const int32_t one = (int32_t)1 << ETHOEDGE_ORIENT_FRAC;
    const int32_t m[3] = {mean[0], mean[1], mean[2]};
    const uint32_t s2 = (uint32_t)(m[0] * m[0]) + (uint32_t)(m[1] * m[1]) +
                        (uint32_t)(m[2] * m[2]);
    const int k = axis, k1 = (axis + 1) % 3, k2 = (axis + 2) % 3;
    const int32_t s = sign < 0 ? -1 : 1;
    int32_t w[3], n, p, x, v;
    int64_t ww, a, b;
    int i, j;
    for (i = 0; i < 9; ++i) {
        rot[i] = (int16_t)(i % 4 == 0 ? one : 0); /* the identity */
    }
    if (s2 == 0 || axis < 0 || axis > 2) { /* no direction, or no such axis: the identity */
        return;
    }
    /* a = mean / n, b = s e_k: R = c I + [v]x + v v^T / (1 + c) with v = a x b, c = a . b;
       w = mean x b = n v, p = mean . b = n c: R = (p I + [w]x) / n + w w^T / (n (n + p)) */
    n = (int32_t)isqrt_round(s2);
    p = s * m[k];
    w[k] = 0;
    w[k1] = s * m[k2];
    w[k2] = -s * m[k1];
    ww = (int64_t)w[k1] * w[k1] + (int64_t)w[k2] * w[k2];
    if (p < 0 && ww == 0) { /* opposite: half a turn about e_r, r = 2 (r = 1 for k = 2), as
                               the float calibration turns */
        const int r = k == 2 ? 1 : 2;
        for (i = 0; i < 3; ++i) {
            rot[4 * i] = (int16_t)(i == r ? one : -one);
        }
        return;
    }
    /* entry (i, j) = (x a + w_i w_j b) / (n a), x = p (i = j) or [w]x (i, j): a = n + p,
       b = 1 where p >= 0; where p < 0, n + p = |w|^2 / (n - p) kept exact: a = |w|^2,
       b = n - p */
    a = p >= 0 ? (int64_t)n + p : ww;
    b = p >= 0 ? 1 : (int64_t)n - p;
    for (i = 0; i < 3; ++i) {
        for (j = 0; j < 3; ++j) {
            const int d = (j - i + 3) % 3; /* [w]x: (i, i+1) = -w_{i+2}, (i, i+2) = w_{i+1} */
            x = d == 0 ? p : d == 1 ? -w[(i + 2) % 3] : w[(i + 1) % 3];
            v = div_round((x * a + (int64_t)w[i] * w[j] * b) * one, n * a);
            rot[3 * i + j] = (int16_t)(v > one ? one : v < -one ? -one : v);
        }
    }
}

void ethoedge_orient(const int16_t rot[9], const int16_t in[3], int16_t out[3])
{
    int32_t a[3];
    int i;
    for (i = 0; i < 3; ++i) {
        a[i] = rot[3 * i] * in[0] + rot[3 * i + 1] * in[1] + rot[3 * i + 2] * in[2];
    }
    for (i = 0; i < 3; ++i) { /* |a| <= 3 2^29: no overflow */
        out[i] = (int16_t)sat16((a[i] + (1 << (ETHOEDGE_ORIENT_FRAC - 1))) >> ETHOEDGE_ORIENT_FRAC);
    }
}
