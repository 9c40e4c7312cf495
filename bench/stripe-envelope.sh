#!/bin/bash
# stripe-envelope.sh: a pack striped over two devices in the K230-like envelope (issue
# 15's targets): the SD card and a USB disk, each throttled to its own bandwidth.
#
#   sudo bench/stripe-envelope.sh --model M.gguf [--bw 25] [--bw2 40] [--mem 448]
#                                 [-n 6] [--out DIR] [--build DIR] [-- EXTRA ARGS]
#
# repack writes M.gguf as two members with shares --bw,--bw2 (--stripe-weights); one
# bench/envelope.sh run puts member 0 on a device throttled to --bw MB/s and member 1
# on a second one throttled to --bw2, in a memory cgroup of --mem MiB. Inside, from a
# cold cache each time:
#   1. io-bench reads each member alone, then both at once (the devices' bandwidths,
#      measured in this run);
#   2. stream-infer --pin none, 3 tokens: each pass streams the whole pack; its read
#      rate against the sum of the two bandwidths measured alone, and each member's
#      busy share of the passes' time;
#   3. stream-infer with the default pins, N tokens: time per generated token after the
#      first, against (GGUF bytes / --bw MB/s), one device's time per token.
# EXTRA ARGS go to both stream-infer runs.
#
# The model: tools/mkmodel --preset llama3-8b-q2_k --vocab .../llama3-vocab.gguf -o M.gguf
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
MODEL= BW=25 BW2=40 MEM=448 N=6 OUT= BUILD=$root/build
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
. "$here/lib.sh"
while [ $# -gt 0 ]; do
    bench_opt "$@"
    [ "$BENCH_SHIFT" -gt 0 ] && { shift "$BENCH_SHIFT"; continue; }
    case $1 in
    --bw2) BW2=${2:?--bw2 needs MB/s}; shift 2 ;;
    --) shift; break ;;
    *) bench_die "unknown option '$1' (see --help)" ;;
    esac
done
bench_need_model
[ "$N" -ge 2 ] 2>/dev/null || bench_die "-n must be at least 2"
bench_need_built bench/io-bench tools/stream-infer tools/repack
bench_out_dir stripe-envelope
cp "$BUILD/tools/stream-infer" "$BUILD/bench/io-bench" "$OUT/"
if [ $# -gt 0 ]; then printf '%q ' "$@"; fi >"$OUT/extra-args"

stem=$(basename "$MODEL" .gguf)
m0=$OUT/$stem.s0.pack m1=$OUT/$stem.s1.pack
echo "stripe-envelope: repack into $m0, $m1 (shares $BW:$BW2)" >&2
"$BUILD/tools/repack" "$MODEL" --stripe "$m0,$m1" --stripe-weights "$BW,$BW2" >"$OUT/repack.txt" 2>&1 ||
    { echo "stripe-envelope.sh: repack failed (see $OUT/repack.txt)" >&2; exit 1; }

cat >"$OUT/inside.sh" <<EOF
#!/bin/bash
set -u
a="\$ENVELOPE_DIR/$(basename "$m0")" b="\$ENVELOPE_DIR2/$(basename "$m1")"
cg=\$ENVELOPE_MEM_CGROUP
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
cold
"$OUT/io-bench" --max-bytes 128M --csv "$OUT/io-bench.csv" "\$a" "\$b" >"$OUT/io-bench.txt" 2>&1 ||
    echo "io-bench failed" >&2
eval "set -- \$(cat "$OUT/extra-args")"
run() {
    local name=\$1
    shift
    echo "stripe-envelope: \$name" >&2
    cold
    [ "\$ENVELOPE_CGROUP_VERSION" = v1 ] && echo 0 >"\$cg/memory.max_usage_in_bytes"
    [ "\$ENVELOPE_CGROUP_VERSION" = v2 ] && echo 0 >"\$cg/memory.peak" 2>/dev/null
    "$OUT/stream-infer" -m "\$a" --stripe-path "\$ENVELOPE_DIR2" --report-json "$OUT/\$name.json" -q "\$@" \\
        >"$OUT/\$name.out" 2>"$OUT/\$name.err"
    echo "status=\$?" >"$OUT/\$name.status"
    if [ "\$ENVELOPE_CGROUP_VERSION" = v1 ]; then cat "\$cg/memory.max_usage_in_bytes"; else cat "\$cg/memory.peak" 2>/dev/null; fi \\
        >"$OUT/\$name.peak"
}
run pin-none -p "Once upon a time, " -n 3 --pin none "\$@"
run pin-auto -p "Once upon a time, " -n $N "\$@"
EOF
chmod +x "$OUT/inside.sh"
"$here/envelope.sh" --bw "$BW" --file "$m0" --bw2 "$BW2" --file2 "$m1" --mem "$MEM" --image-dir "$OUT" -q \
    --summary "$OUT/envelope.txt" -- "$OUT/inside.sh" || echo "stripe-envelope.sh: the envelope run failed" >&2
rm -f "$m0" "$m1"

python3 - "$OUT" "$MODEL" "$BW" "$BW2" "$MEM" <<'PY' | tee "$OUT/summary.txt"
import csv, json, os, sys
out, model, bw, bw2, mem = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
alone, together = [], []
for row in csv.DictReader(open(f"{out}/io-bench.csv")):
    (alone if row["test"] == "alone" else together).append(float(row["mb_s"]))
gguf = os.path.getsize(model)
print(f"# two devices throttled to {bw:g} and {bw2:g} MB/s, {mem} MiB cgroup; GGUF {gguf / 1e9:.3f} GB")
print(f"io-bench alone: {' + '.join('%.2f' % x for x in alone)} = {sum(alone):.2f} MB/s; "
      f"together: {' + '.join('%.2f' % x for x in together)} = {sum(together):.2f} MB/s")
for name in ("pin-none", "pin-auto"):
    try:
        r = json.load(open(f"{out}/{name}.json"))
    except (OSError, ValueError):
        print(f"{name}: no report (see {out}/{name}.err)")
        continue
    status = open(f"{out}/{name}.status").read().strip()
    peak = int(open(f"{out}/{name}.peak").read().strip() or 0) / 1048576
    streamed = sum(m["streamed_bytes"] for m in r["members"])
    rate = streamed / 1e6 / r["pass_s"]
    print(f"{name}: {status}, {r['passes']} passes of {r['bytes_per_pass'] / 1e9:.3f} GB, pinned "
          f"{r['pinned_bytes'] / 1048576:.0f} MiB, peak {peak:.1f} MiB")
    print(f"  streamed {rate:.2f} MB/s over the passes = {rate / sum(alone):.3f} of the sum alone")
    for i, m in enumerate(r["members"]):
        print(f"  member {i}: {m['streamed_bytes'] / 1e9:.3f} GB streamed, {m['mb_s_busy']:.2f} MB/s while busy, "
              f"busy {m['busy_fraction']:.3f} of the passes' time")
    if r.get("tokens_generated", 0) > 1:
        per_tok = r["gen_s"] / (r["tokens_generated"] - 1)
        one_dev = gguf / 1e6 / bw
        print(f"  time per generated token after the first: {per_tok:.2f} s = {per_tok / one_dev:.3f} x "
              f"(GGUF bytes / {bw:g} MB/s = {one_dev:.1f} s)")
PY
echo "stripe-envelope.sh: reports in $OUT" >&2
