#!/usr/bin/env bash
# Dynamic RISC-V instructions of whole forward steps of Llama 3 8B's shapes, counted
# under qemu-user (VLEN 128) with the bench/qemu-insn.c plugin, everything included
# (matrix kernels, attention, norms, SiLU, RoPE, activation quantization, the scheduler):
#
#   bench/pass-insn.sh [BUILD_RV64 [BUILD_NATIVE]]   (defaults build-rv64, build)
#
#   BATCH  step widths (default 1,8,32)     POS  context positions (default 64,256)
#   BPOS   widths of batched attention steps counted at each POS (default none)
#   (an empty BATCH or POS skips that part)
#
# Per layer: mkmodel writes the 8B Q2_K preset's shapes and type mix with 1 and with 2
# layers; riscv64 stream-infer evaluates a prompt of B tokens in one step on each, and
# the difference of the two counts is one layer (startup, the embedding and the output
# head cancel). Attention at position P: a model with the 8B attention shape (32 heads
# of 128, 8 KV heads) on a narrow residual (dim 256, ff 256, so its matrices cost
# little), 1 and 2 layers; a prompt of P tokens and two generated tokens, less the same
# with one (the first is sampled from the prompt's logits, the second needs a step on
# it): one token's step at position P, per layer by the same difference. No drafting
# (--draft none): the prompt repeats, so guesses would put more tokens in that step. One
# compute thread (-t 1, the K230's one core): with the default of one per CPU the
# workers' waiting is counted too and varies from run to run.
# Batched attention (BPOS): the same narrow model, a prompt of P + B tokens evaluated in
# steps of B (-b B) less a prompt of P tokens: the last step, B tokens at positions
# P..P+B-1 (P a multiple of B), per layer; less the same step at position 0 (a prompt
# of B tokens), which leaves what the context adds (the step's own matrices cancel).
# Shown per token.
# Columns as bench/kernel-insn.sh's (cyc: 2 x LMUL per vector instruction + scalar +
# vset), for the step and per token; the K230 estimate in docs/BENCHMARKS.md multiplies
# by 32 layers and adds the output head from the kernel table.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
rv=$(cd "${1:-$src/build-rv64}" && pwd)
host=$(cd "${2:-$src/build}" && pwd)
batch=${BATCH-1,8,32}
positions=${POS-64,256}
ninja -C "$rv" tools/stream-infer bench/libsiinsn.so >/dev/null
ninja -C "$host" tools/mkmodel >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

shape8b="--dim 4096 --heads 32 --kv-heads 8 --head-dim 128 --ff 14336 --vocab-size 128256 --type Q2_K
 --tensor-type attn_v=Q4_K --tensor-type attn_output=Q3_K --tensor-type ffn_down=Q3_K --tensor-type output=Q6_K"
shapeatt="--dim 256 --heads 32 --kv-heads 8 --head-dim 128 --ff 256 --vocab-size 512 --ctx 4096 --type Q2_K"
for l in 1 2; do
    # shellcheck disable=SC2086
    "$host/tools/mkmodel" -o "$tmp/l$l.gguf" --layers $l $shape8b >/dev/null 2>&1
    # shellcheck disable=SC2086
    "$host/tools/mkmodel" -o "$tmp/a$l.gguf" --layers $l $shapeatt >/dev/null 2>&1
done

# count MODEL IDS N [stream-infer options] -> the plugin's counts (insns scalar vector vset lmul emul)
count() {
    SI_QEMU_PLUGIN="$rv/bench/libsiinsn.so,out=$tmp/c" "$src/tools/qemu-rvv.sh" "$rv/tools/stream-infer" \
        -m "$1" --prompt-ids "$2" -n "$3" --temp 0 --io pread --kernels rvv --draft none -t 1 -q "${@:4}" >/dev/null 2>&1
    awk '{ print $2, $4, $6, $8, $10, $12 }' "$tmp/c"
}
ids() { seq 0 $(($1 - 1)) | awk '{ printf("%d ", 100 + $1 % 300) }'; }
# minus "a1 .. a6" "b1 .. b6" -> b - a
minus() { echo "$1 $2" | awk '{ for (i = 1; i <= 6; i++) printf("%d ", $(i + 6) - $i) }'; }
# bstep MODEL Q B -> the counts of a step of B tokens at positions Q..Q+B-1 (at Q = 0 with
# the run's startup, which the 2 - 1 layer difference cancels)
bstep() {
    if [ "$2" = 0 ]; then
        count "$1" "$(ids "$3")" 0 -b "$3"
    else
        minus "$(count "$1" "$(ids "$2")" 0 -b "$3")" "$(count "$1" "$(ids $(($2 + $3)))" 0 -b "$3")"
    fi
}

# show WHAT TOKENS "a1 .. a6" "b1 .. b6": (b - a) per layer, and per token
show() {
    echo "$3 $4" | awk -v w="$1" -v t="$2" '{
        for (i = 1; i <= 6; i++) d[i] = $(i + 6) - $i
        cyc = 2 * d[5] + d[2] + d[4]; cycw = 2 * d[6] + d[2] + d[4]
        printf("%-22s %6.3f %6.3f %6.3f %6.3f %7.3f %7.3f | %7.3f %7.3f %7.3f\n", w, d[1] / 1e9, d[2] / 1e9,
               d[3] / 1e9, d[4] / 1e9, cyc / 1e9, cycw / 1e9, d[1] / t / 1e6, cyc / t / 1e6, cycw / t / 1e6)
    }'
}

echo "# riscv64 stream-infer under qemu-riscv64 VLEN 128, one layer (2-layer count - 1-layer count)"
printf "%-22s %6s %6s %6s %6s %7s %7s | %7s %7s %7s\n" step "Ginsn" scalar vector vset "Gcyc" "GcycW" \
    "Minsn/t" "Mcyc/t" "McycW/t"
for b in ${batch//,/ }; do
    one=$(count "$tmp/l1.gguf" "$(ids "$b")" 0)
    two=$(count "$tmp/l2.gguf" "$(ids "$b")" 0)
    show "8B layer, B=$b" "$b" "$one" "$two"
done
for p in ${positions//,/ }; do
    d=()
    for l in 1 2; do
        d+=("$(minus "$(count "$tmp/a$l.gguf" "$(ids "$p")" 1)" "$(count "$tmp/a$l.gguf" "$(ids "$p")" 2)")")
    done
    show "attention, pos $p" 1 "${d[0]}" "${d[1]}"
done
bpos=${BPOS-}
for p in ${positions//,/ }; do
    for b in ${bpos//,/ }; do
        if [ $((p % b)) != 0 ]; then
            echo "attention B=$b, pos $p: skipped (the position must be a multiple of B: the prompt runs in steps of B)"
            continue
        fi
        at=() # the step at position 0, then at p; each one layer (2 - 1)
        for q in 0 "$p"; do
            at+=("$(minus "$(bstep "$tmp/a1.gguf" "$q" "$b")" "$(bstep "$tmp/a2.gguf" "$q" "$b")")")
        done
        show "attention B=$b, pos $p" "$b" "${at[0]}" "${at[1]}"
    done
done
