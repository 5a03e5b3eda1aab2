/* insn_count_plugin.c: a QEMU TCG plugin (plugin API v1, QEMU 7.2) that counts executed guest
   instructions, in total and between two marker functions.

   Debian's QEMU ships no qemu-plugin.h, so the few API declarations used are written out
   here (they match QEMU 7.2's include/qemu/qemu-plugin.h).
   Build: gcc -O2 -shared -fPIC -fvisibility=hidden -o libinsn_count.so insn_count_plugin.c
   Use:   qemu-system-arm ... -plugin ./libinsn_count.so,begin=bench_begin,end=bench_end
            -d plugin -D counts.log
   Output lines: "insn_count region <i> <instructions>" each time the end marker is reached
   (instructions executed since the begin marker), "insn_count total <n>" at exit.
   A marker is the symbol of the first instruction of a translation block (function entry).
   With hist=PATH it also counts every executed instruction by address (below 2 MiB, the
   boards' code flash) and writes "<hex address> <count>" lines to PATH at exit (a profile:
   benchmarks/c_profile.py maps them to functions). */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                                  qemu_plugin_vcpu_tb_trans_cb_t cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                        size_t idx);
extern void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                       enum qemu_plugin_op op, void *ptr,
                                                       uint64_t imm);
extern void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                                   qemu_plugin_vcpu_udata_cb_t cb,
                                                   enum qemu_plugin_cb_flags flags, void *userdata);
extern const char *qemu_plugin_insn_symbol(const struct qemu_plugin_insn *insn);
extern uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                           void *userdata);
extern void qemu_plugin_outs(const char *string);

EXPORT int qemu_plugin_version = 1;

static uint64_t total;
static uint64_t at_begin;
static unsigned regions;
static char begin_sym[128] = "bench_begin";
static char end_sym[128] = "bench_end";
static char hist_path[512] = "";
#define HIST_SLOTS (1u << 20) /* halfword slots: addresses below 2 MiB */
static uint64_t *hist;

static void on_begin(unsigned int vcpu, void *ud)
{
    (void)vcpu;
    (void)ud;
    at_begin = total;
}

static void on_end(unsigned int vcpu, void *ud)
{
    char line[96];
    (void)vcpu;
    (void)ud;
    snprintf(line, sizeof line, "insn_count region %u %" PRIu64 "\n", regions++, total - at_begin);
    qemu_plugin_outs(line);
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
        if (hist) {
            const uint64_t a = qemu_plugin_insn_vaddr(insn);
            if (a < 2u * HIST_SLOTS) {
                qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                           &hist[a >> 1], 1);
            }
        }
        if (i == 0) {
            const char *sym = qemu_plugin_insn_symbol(insn);
            if (sym && strcmp(sym, begin_sym) == 0) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS,
                                                       NULL);
            } else if (sym && strcmp(sym, end_sym) == 0) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
            }
        }
    }
}

static void on_exit_cb(qemu_plugin_id_t id, void *ud)
{
    char line[64];
    (void)id;
    (void)ud;
    snprintf(line, sizeof line, "insn_count total %" PRIu64 "\n", total);
    qemu_plugin_outs(line);
    if (hist) {
        FILE *f = fopen(hist_path, "w");
        unsigned k;
        if (f) {
            for (k = 0; k < HIST_SLOTS; ++k) {
                if (hist[k]) {
                    fprintf(f, "%x %" PRIu64 "\n", 2u * k, hist[k]);
                }
            }
            fclose(f);
        }
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "begin=", 6) == 0) {
            snprintf(begin_sym, sizeof begin_sym, "%s", argv[i] + 6);
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            snprintf(end_sym, sizeof end_sym, "%s", argv[i] + 4);
        } else if (strncmp(argv[i], "hist=", 5) == 0) {
            snprintf(hist_path, sizeof hist_path, "%s", argv[i] + 5);
            hist = calloc(HIST_SLOTS, sizeof *hist);
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
