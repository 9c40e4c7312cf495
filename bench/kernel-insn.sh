#!/usr/bin/env bash
# Dynamic RISC-V instructions per weight of the rvv set's matrix kernels (mat_dot),
# counted under qemu-user with the bench/qemu-insn.c plugin, end to end:
#
#   bench/kernel-insn.sh [BUILD_DIR]        (default build-rv64, made by tools/build-riscv64.sh)
#
# An aarch64 build (tools/build-aarch64.sh; its qemu-wrapper.txt names qemu-aarch64.sh)
# counts the neon set under qemu-aarch64 instead (SI_QEMU_CPU, default cortex-a72), with
# the columns insn, scalar and simd (SIMD&FP instructions, bench/qemu-insn.c), per weight
# and per weight and token.
#
#   TYPES  types to count (default Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,Q4_0,Q8_0,F16,F32)
#   BATCH  batch widths (default 1,8,16,32)
#   REPS   calls in the long run (default 5); VLEN (default 128, the K230's)
#
# Per (type, B) it runs kernel-bench --reps 1 and --reps REPS and divides the difference
# by (REPS - 1) * weights (n 4096 x 64 rows): setup (weights, activation quantization,
# process start) cancels. Columns, per weight (per call, whatever B), then per weight
# and token (/B):
#   scalar, vector, vset   instructions by class (vset: vsetvli/vsetivli/vsetvl)
#   lmul                   mean max(LMUL, 1) of the vector instructions
#   cyc                    estimated C908 cycles = 2 x sum of LMUL over vector
#                          instructions + scalar + vset (a vector instruction takes
#                          about 2 x LMUL cycles on a 64-bit datapath at VLEN 128)
#   cycW                   the same with widening instructions counted at 2 x LMUL
#                          (their destination group): the pessimistic estimate
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-rv64}
build=$(cd "$build" && pwd)
types=${TYPES:-Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,Q4_0,Q8_0,F16,F32}
batch=${BATCH:-1,8,16,32}
reps=${REPS:-5}
n=4096
rows=64
plugin=$build/bench/libsiinsn.so
bench=$build/bench/kernel-bench
ninja -C "$build" bench/kernel-bench bench/libsiinsn.so >/dev/null
[ -x "$bench" ] && [ -f "$plugin" ] || { echo "kernel-insn: $bench or $plugin missing" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if grep -q qemu-aarch64.sh "$build/qemu-wrapper.txt" 2>/dev/null; then
    count() {
        SI_QEMU_PLUGIN="$plugin,arch=aarch64,out=$tmp/c" "$src/tools/qemu-aarch64.sh" "$bench" \
            --sets neon --types "$1" --batch "$2" --n $n --rows $rows --reps "$3" >/dev/null
        cat "$tmp/c"
    }
    echo "# neon mat_dot under qemu-aarch64 -cpu ${SI_QEMU_CPU:-cortex-a72}: n=$n rows=$rows, (count(R=$reps) - count(R=1)) / ($((reps - 1)) * $((n * rows)) weights)"
    printf "%-5s %3s | %6s %6s %6s | %8s %8s\n" type B insn scalar simd insn/tok simd/tok
    for t in ${types//,/ }; do
        for b in ${batch//,/ }; do
            one=$(count "$t" "$b" 1)
            many=$(count "$t" "$b" "$reps")
            echo "$one" "$many" | awk -v t="$t" -v b="$b" -v d=$(((reps - 1) * n * rows)) '{
                for (i = 2; i <= 6; i += 2) x[i] = ($(i + 12) - $i) / d
                printf("%-5s %3d | %6.3f %6.3f %6.3f | %8.3f %8.3f\n", t, b, x[2], x[4], x[6], x[2] / b, x[6] / b)
            }'
        done
    done
    exit 0
fi

# count TYPE B R -> the plugin's line of counts
count() {
    SI_QEMU_VLEN=${VLEN:-128} SI_QEMU_PLUGIN="$plugin,out=$tmp/c" "$src/tools/qemu-rvv.sh" "$bench" \
        --sets rvv --types "$1" --batch "$2" --n $n --rows $rows --reps "$3" >/dev/null
    cat "$tmp/c"
}

echo "# rvv mat_dot under qemu-riscv64 VLEN ${VLEN:-128}: n=$n rows=$rows, (count(R=$reps) - count(R=1)) / ($((reps - 1)) * $((n * rows)) weights)"
printf "%-5s %3s | %6s %6s %6s %6s %5s %6s %6s | %8s %8s %8s\n" type B insn scalar vector vset lmul cyc cycW \
    insn/tok cyc/tok cycW/tok
for t in ${types//,/ }; do
    for b in ${batch//,/ }; do
        one=$(count "$t" "$b" 1)
        many=$(count "$t" "$b" "$reps")
        echo "$one" "$many" | awk -v t="$t" -v b="$b" -v d=$(((reps - 1) * n * rows)) '{
            # fields: insns scalar vector vset vector_lmul vector_emul, at $2.. of each half
            for (i = 2; i <= 12; i += 2) x[i] = ($(i + 12) - $i) / d
            ins = x[2]; sc = x[4]; ve = x[6]; vs = x[8]; vl = x[10]; vw = x[12]
            cyc = 2 * vl + sc + vs; cycw = 2 * vw + sc + vs
            f = "%-5s %3d | %6.3f %6.3f %6.3f %6.3f %5.2f %6.3f %6.3f | %8.3f %8.3f %8.3f\n"
            printf(f, t, b, ins, sc, ve, vs, (ve > 0 ? vl / ve : 0), cyc, cycw, ins / b, cyc / b, cycw / b)
        }'
    done
done
