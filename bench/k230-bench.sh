#!/bin/bash
# k230-bench.sh: the issue-5 targets in one envelope run.
#
#   bench/k230-bench.sh --model FILE.gguf --out DIR [--bw MBPS] [--mem MIB]
#                       [--build DIR] [--io-bench-bytes SIZE (default: 3 s worth)]
#                       [--io-bench-args "..."]
#                       [--prompt-ids "IDS"] [-n N] [-- EXTRA stream-infer ARGS]
#
# Inside one bench/envelope.sh run (model copied onto a throttled loop device, memory
# cgroup of MIB MiB): io-bench on the copy (raw read bandwidth of the envelope, then
# the scheduler alone), then stream-infer with default flags on a 6-token prompt
# generating 2 tokens (one prompt pass + one generation pass), with the cgroup's peak
# memory reset in between so it is stream-infer's own. Then bench/k230-report.py
# prints the figures against the targets. Results in DIR: io-bench.{txt,csv,png},
# stream-infer.{txt,json}, stream-infer-cgroup.txt, envelope.txt, envelope.log,
# report.md.
set -eu -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BW=25 MEM=448 MODEL= OUT= BUILD=$root/build IOB_BYTES= IOB_ARGS=
PROMPT_IDS="128000 9906 1070 374 264 1296" N=2
while [ $# -gt 0 ]; do
    case $1 in
    --bw) BW=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --io-bench-bytes) IOB_BYTES=$2; shift 2 ;;
    --io-bench-args) IOB_ARGS=$2; shift 2 ;;
    --prompt-ids) PROMPT_IDS=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) echo "k230-bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
# About 1.3 s per io-bench measurement: the default sweep is 136 measurements, so
# about 3 minutes whatever the bandwidth (io-bench leaves each one's start, where
# blk-throttle lets a burst through, out of the timing, and measures the best
# configuration again over 8x as many bytes for the device bandwidth); unthrottled:
# 256 MiB.
if [ -z "$IOB_BYTES" ]; then
    IOB_BYTES=$(awk -v b="$BW" 'BEGIN { m = b > 0 ? int(b * 1.3 * 1e6 / 1048576) : 256; if (m < 8) m = 8; print m "M" }')
fi
[ -n "$MODEL" ] && [ -n "$OUT" ] || { echo "k230-bench.sh: --model and --out are required" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
for b in bench/io-bench tools/stream-infer; do
    [ -x "$BUILD/$b" ] || { echo "k230-bench.sh: $BUILD/$b not built (ninja -C $BUILD)" >&2; exit 2; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
name=$(basename "$MODEL")
export IOB="$BUILD/bench/io-bench" SI="$BUILD/tools/stream-infer" OUT name IOB_BYTES IOB_ARGS PROMPT_IDS N
if [ $# -gt 0 ]; then printf '%q ' "$@"; fi >"$OUT/extra-args"

# Not under set -e: a failed run (stream-infer error, OOM kill) still gets its report.
set +e
"$here/envelope.sh" --bw "$BW" --mem "$MEM" --file "$MODEL" --image-dir "$(dirname "$MODEL")" \
    --summary "$OUT/envelope.txt" -- bash -c '
set -u
m=$ENVELOPE_DIR/$name
echo "== io-bench $m ($IOB_BYTES per measurement) ==" >&2
$IOB --max-bytes "$IOB_BYTES" $IOB_ARGS --csv "$OUT/io-bench.csv" --plot "$OUT/io-bench.png" "$m" >"$OUT/io-bench.txt" ||
    echo "io-bench failed: $?" >&2
# stream-infer from a cold cache, with the cgroup peak and OOM count of its own.
sync; echo 3 >/proc/sys/vm/drop_caches
cg=$ENVELOPE_MEM_CGROUP
if [ "$ENVELOPE_CGROUP_VERSION" = v1 ]; then
    echo 0 >"$cg/memory.max_usage_in_bytes"
    oom0=$(awk "\$1 == \"oom_kill\" { print \$2 }" "$cg/memory.oom_control")
else
    echo 0 >"$cg/memory.peak" 2>/dev/null || echo "note: memory.peak not resettable here (Linux < 6.12): the peak includes io-bench" >&2
    oom0=$(awk "\$1 == \"oom_kill\" { print \$2 }" "$cg/memory.events")
fi
# The device bandwidth io-bench measured (its long confirmation run, else the best of
# the sweep), so that stream-infer reports achieved / device; only a report figure.
dev=$(awk -F, "NR > 1 && \$1 == \"confirm\" { print \$8 }" "$OUT/io-bench.csv" 2>/dev/null | head -n1)
[ -n "$dev" ] || dev=$(awk -F, "NR > 1 && \$1 == \"raw\" && \$8 > b { b = \$8 } END { if (b) print b }" "$OUT/io-bench.csv" 2>/dev/null)
devopt=${dev:+--device-mbps $dev}
echo "== stream-infer -m $m --prompt-ids \"$PROMPT_IDS\" -n $N $devopt $(cat "$OUT/extra-args") ==" >&2
eval "set -- $(cat "$OUT/extra-args")"
$SI -m "$m" --prompt-ids "$PROMPT_IDS" -n "$N" --print-ids $devopt --report-json "$OUT/stream-infer.json" "$@" \
    >"$OUT/stream-infer.out" 2>"$OUT/stream-infer.txt"
rc=$?
if [ "$ENVELOPE_CGROUP_VERSION" = v1 ]; then
    peak=$(cat "$cg/memory.max_usage_in_bytes")
    oom1=$(awk "\$1 == \"oom_kill\" { print \$2 }" "$cg/memory.oom_control")
else
    peak=$(cat "$cg/memory.peak" 2>/dev/null || echo 0)
    oom1=$(awk "\$1 == \"oom_kill\" { print \$2 }" "$cg/memory.events")
fi
printf "status=%s\ncgroup_peak_bytes=%s\noom_kill=%s\n" "$rc" "$peak" "$((oom1 - oom0))" >"$OUT/stream-infer-cgroup.txt"
cat "$OUT/stream-infer.txt" >&2
exit $rc
' 2>&1 | tee "$OUT/envelope.log"
rc=${PIPESTATUS[0]}
set -e
python3 "$here/k230-report.py" "$OUT" | tee "$OUT/report.md"
exit "$rc"
