/* A qemu TCG plugin (user mode) that counts executed RISC-V instructions by class, for
 * bench/kernel-bench's instruction counts under qemu-riscv64 (docs/BENCHMARKS.md); with
 * the argument arch=aarch64, AArch64 instructions under qemu-aarch64 (below).
 *
 * Debian 12 ships qemu-user with plugin support but neither qemu's source nor its
 * qemu-plugin.h, so the few entry points used are declared here from the documented,
 * versioned plugin API (version 1, qemu 4.2 .. 8.x); qemu checks qemu_plugin_version.
 *
 * Classes: scalar (anything not below, compressed instructions included), vector
 * (OP-V arithmetic, vector loads and stores) and vset (vsetvli / vsetivli / vsetvl).
 * Each vector instruction is also weighted by the LMUL in force: the last vsetvli or
 * vsetivli before it in its translation block when there is one (known at translation),
 * else the LMUL of the last such instruction executed (tracked at run time). Fractional
 * LMUL counts as 1: a vector instruction occupies the datapath at least once.
 *
 * Output (at exit, to the file given as out=PATH, else stderr), one line:
 *   insns N scalar N vector N vset N vector_lmul N vector_emul N
 * where vector_lmul is the sum over vector instructions of max(LMUL, 1), and
 * vector_emul the same with widening instructions (vw*, vfw*) counted at their
 * destination's 2 x LMUL: on a narrow datapath a widening instruction at LMUL 4 writes
 * eight registers and is likely to occupy it as long as an LMUL 8 one, so vector_emul
 * is the less flattering basis of a cycle estimate.
 *
 * arch=aarch64: every instruction is 4 bytes; "vector" counts the SIMD&FP ones, i.e. the
 * encodings with bits 27 and 26 set (op0 x111: scalar floating point and Advanced SIMD
 * data processing; op0 x1x0 with V = 1: SIMD&FP loads and stores), so scalar FP
 * instructions count there too; everything else is scalar; vset stays 0 and each vector
 * instruction weighs 1 in vector_lmul and vector_emul. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           void (*cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb));
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t id, void *userdata),
                                    void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            void (*cb)(unsigned int vcpu_index, void *userdata),
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t n_scalar, n_vector, n_vset, n_vlmul, n_vemul;
static uint64_t cur_lmul = 1; /* max(LMUL, 1) of the last vsetvli/vsetivli executed */
static char out_path[1024];
static bool arch_a64; /* arch=aarch64 */

/* max(LMUL, 1) from a vtype's vlmul field */
static uint64_t lmul_of(uint32_t vlmul)
{
    return vlmul < 4 ? (uint64_t)1 << vlmul : 1;
}

static void on_vset(unsigned int vcpu, void *ud)
{
    (void)vcpu;
    cur_lmul = (uint64_t)(uintptr_t)ud;
}

/* ud: 2 for a widening instruction, else 1 */
static void on_vector_unknown_lmul(unsigned int vcpu, void *ud)
{
    (void)vcpu;
    n_vlmul += cur_lmul;
    n_vemul += cur_lmul * (uint64_t)(uintptr_t)ud;
}

/* Widening arithmetic: OPMVV/OPMVX (funct3 2, 6) and OPFVV/OPFVF (1, 5) with funct6
 * 0b11xxxx (vwaddu .. vwmaccsu, vfwadd .. vfwnmsac). The widening reductions (OPIVV
 * funct6 0b11000x, OPFVV 0b110001/0b110011) read LMUL registers and write one, so they
 * are not counted as widening here; the integer ones are OPIVV (funct3 0) and excluded
 * by funct3, the float ones are excluded explicitly. */
static bool is_widening(uint32_t w)
{
    uint32_t f3 = (w >> 12) & 7, f6 = w >> 26;
    if ((f3 == 2 || f3 == 6) && (f6 & 0x30) == 0x30)
        return true;
    if ((f3 == 1 || f3 == 5) && (f6 & 0x30) == 0x30)
        return !(f3 == 1 && (f6 == 0x31 || f6 == 0x33));
    return false;
}

/* AArch64: scalar and SIMD&FP counts of a block (classes above) */
static void tb_trans_a64(struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t sc = 0, vec = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t w = 0;
        memcpy(&w, qemu_plugin_insn_data(qemu_plugin_tb_get_insn(tb, i)), 4);
        if (((w >> 26) & 3) == 3)
            vec++;
        else
            sc++;
    }
    if (sc)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_scalar, sc);
    if (vec) {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_vector, vec);
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_vlmul, vec);
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_vemul, vec);
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    if (arch_a64) {
        tb_trans_a64(tb);
        return;
    }
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t sc = 0, vec = 0, vs = 0, vl_static = 0, ve_static = 0;
    uint64_t lmul = 0; /* 0: not known yet in this block */
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t w = 0;
        size_t sz = qemu_plugin_insn_size(insn);
        memcpy(&w, qemu_plugin_insn_data(insn), sz < 4 ? sz : 4);
        if (sz != 4) {
            sc++;
            continue;
        }
        uint32_t op = w & 0x7F, f3 = (w >> 12) & 7;
        bool vector = false;
        if (op == 0x57 && f3 == 7) {
            vs++;
            if ((w >> 31) == 0 || (w >> 30) == 3) { /* vsetvli, vsetivli: vtype is an immediate */
                lmul = lmul_of((w >> 20) & 7);
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_vset, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)lmul);
            } else {
                lmul = 0; /* vsetvl: vtype from a register, unknown here */
            }
            continue;
        }
        if (op == 0x57)
            vector = true;
        else if ((op == 0x07 || op == 0x27) && (f3 == 0 || f3 >= 5))
            vector = true;
        if (!vector) {
            sc++;
            continue;
        }
        vec++;
        const uint64_t wide = op == 0x57 && is_widening(w) ? 2 : 1;
        if (lmul) {
            vl_static += lmul;
            ve_static += lmul * wide;
        } else {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_vector_unknown_lmul, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)wide);
        }
    }
    if (sc)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_scalar, sc);
    if (vec)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_vector, vec);
    if (vs)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_vset, vs);
    if (vl_static)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_vlmul, vl_static);
    if (ve_static)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &n_vemul, ve_static);
}

static void at_exit(qemu_plugin_id_t id, void *ud)
{
    (void)id;
    (void)ud;
    char line[256];
    snprintf(line, sizeof line, "insns %" PRIu64 " scalar %" PRIu64 " vector %" PRIu64 " vset %" PRIu64
             " vector_lmul %" PRIu64 " vector_emul %" PRIu64 "\n", n_scalar + n_vector + n_vset, n_scalar, n_vector,
             n_vset, n_vlmul, n_vemul);
    FILE *f = out_path[0] ? fopen(out_path, "w") : NULL;
    if (f) {
        fputs(line, f);
        fclose(f);
    } else {
        qemu_plugin_outs(line);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0)
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        else if (strcmp(argv[i], "arch=aarch64") == 0)
            arch_a64 = true;
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
