#!/usr/bin/env bash
# The largest step of B tokens whose C908 compute stays under a share of a pass (issue
# 17's figure), from the counts of the two other scripts, saved to files:
#
#   bench/pass-insn.sh > steps.txt       (BATCH=1,8,12,16,32 POS=64,256 BPOS=8,16,32)
#   TYPES=Q6_K BATCH=1,8,12,16,32 bench/kernel-insn.sh > head.txt
#   bench/hidden-step.sh steps.txt head.txt
#
#   PASSES   pass times in seconds (default 120,46)   SHARE  of a pass (default 0.8)
#   P        context position (default 1024)          LAYERS (32)   HEAD_W (525336576,
#   GHZ      the core's clock (default 1.6)            the output head's weights, Q6_K)
#
# A step of B tokens costs LAYERS x the per-layer count at B (matrices, norms, RoPE,
# quantization, the scheduler: pass-insn's "8B layer" rows), plus the head at kernel-insn's
# cycles per weight-token x B, plus B tokens of attention at position P: one token at the
# slope between pass-insn's two largest one-token positions, B >= 2 at the per-token cost
# of its widest counted position divided by that position (BPOS subtracts the step at
# position 0). Widths without an attention count take it interpolated linearly between
# the counted widths around them. Both cycle estimates: cyc (widening instructions at
# their source LMUL) and cycW (at their destination's). Between counted widths the step
# is interpolated linearly to find the largest B under SHARE x each pass.
set -euo pipefail
usage() { echo "usage: bench/hidden-step.sh PASS_INSN_OUTPUT KERNEL_INSN_Q6K_OUTPUT" >&2; exit 2; }
[ $# -eq 2 ] || usage
for f in "$1" "$2"; do
    [ -r "$f" ] || { echo "hidden-step: cannot read $f" >&2; exit 2; }
done
awk -v passes="${PASSES:-120,46}" -v share="${SHARE:-0.8}" -v P="${P:-1024}" -v L="${LAYERS:-32}" \
    -v HW="${HEAD_W:-525336576}" -v ghz="${GHZ:-1.6}" -v steps="$1" -v head="$2" '
# pass-insn: "8B layer, B=8  Ginsn scalar vector vset Gcyc GcycW | Minsn/t Mcyc/t McycW/t"
FILENAME == steps && /^8B layer, B=/ {
    b = substr($3, 3) + 0; lay_c[b] = $8 * 1e9; lay_w[b] = $9 * 1e9; nb++; width[nb] = b
}
# "attention, pos 256  ... | Minsn/t Mcyc/t McycW/t"
FILENAME == steps && /^attention, pos / {
    p = $3 + 0; one_c[p] = $(NF - 1) * 1e6; one_w[p] = $NF * 1e6; if (p > p1) { p0 = p1; p1 = p } else if (p > p0) p0 = p
}
# "attention B=8, pos 256  ... | Minsn/t Mcyc/t McycW/t": the widest position per B
FILENAME == steps && /^attention B=[0-9]+, pos [0-9]+ / {
    b = substr($2, 3) + 0; p = $4 + 0
    if (p > apos[b]) { apos[b] = p; att_c[b] = $(NF - 1) * 1e6 / p; att_w[b] = $NF * 1e6 / p }
}
# kernel-insn: "Q6_K   8 |  insn scalar vector vset lmul cyc cycW | insn/tok cyc/tok cycW/tok"
FILENAME == head && $1 == "Q6_K" && $3 == "|" { hd_c[$2 + 0] = $(NF - 1); hd_w[$2 + 0] = $NF }
function die(msg) { print "hidden-step: " msg > "/dev/stderr"; bad = 1; exit 2 }
END {
    if (bad) exit 2
    if (nb == 0) die(steps ": no \"8B layer, B=\" rows (bench/pass-insn.sh output with BATCH set)")
    if (!p0) die(steps ": needs two one-token attention rows (POS with two positions)")
    att_c[1] = (one_c[p1] - one_c[p0]) / (p1 - p0); att_w[1] = (one_w[p1] - one_w[p0]) / (p1 - p0)
    # batched attention at the widths not counted: between the counted ones around them
    for (i = 1; i <= nb; i++) {
        b = width[i]
        if (b in att_w) continue
        lo = 0; hi = 0
        for (c in att_w) { c += 0; if (c < b && c > lo) lo = c; if (c > b && (!hi || c < hi)) hi = c }
        if (!lo || !hi) die("no attention count at or around B = " b " (BPOS)")
        f = (b - lo) / (hi - lo)
        att_c[b] = att_c[lo] + f * (att_c[hi] - att_c[lo]); att_w[b] = att_w[lo] + f * (att_w[hi] - att_w[lo])
    }
    for (i = 1; i <= nb; i++)
        if (!(width[i] in hd_w)) die(head ": no Q6_K row at B = " width[i] " (kernel-insn.sh with that BATCH)")
    hz = ghz * 1e9
    printf("# a step of B tokens at position %d: %d layers + the head (%d Q6_K weights) + attention, at %.2f GHz\n",
           P, L, HW, ghz)
    printf("%4s %12s %12s %12s %12s %14s\n", "B", "layers+head", "attention", "step cycW", "step cyc", "attn/pos/tok")
    for (i = 1; i <= nb; i++) {
        b = width[i]
        mw = (L * lay_w[b] + HW * hd_w[b] * b) / hz; mc = (L * lay_c[b] + HW * hd_c[b] * b) / hz
        aw = L * P * att_w[b] * b / hz; ac = L * P * att_c[b] * b / hz
        sw[b] = mw + aw; sc[b] = mc + ac
        printf("%4d %11.1fs %11.1fs %11.1fs %11.1fs %13.1fk\n", b, mw, aw, sw[b], sc[b], att_w[b] / 1e3)
    }
    n = split(passes, ps, ",")
    for (k = 1; k <= n; k++) {
        lim = share * ps[k]
        printf("pass %gs: under %.1fs, the largest step is %d tokens by cycW, %d by cyc\n", ps[k], lim,
               largest(sw, lim), largest(sc, lim))
    }
}
# the largest integer B with the step, interpolated between counted widths, under lim
function largest(s, lim,    i, a, c, B, best) {
    best = 0
    for (i = 1; i <= nb; i++) if (s[width[i]] <= lim && width[i] > best) best = width[i]
    for (i = 1; i < nb; i++) {
        a = width[i]; c = width[i + 1]
        for (B = a; B <= c; B++) if (s[a] + (s[c] - s[a]) * (B - a) / (c - a) <= lim && B > best) best = B
    }
    return best
}' "$1" "$2"
