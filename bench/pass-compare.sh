#!/bin/bash
# pass-compare.sh: the time one pass of one sequence takes with two stream-infer
# binaries (say, the last release and this checkout), run alternately on the same
# model from the page cache (--direct off), so that compute, not the device, is what
# differs. Prints per binary the median and minimum seconds per pass and the user CPU
# seconds, then B's median over A's.
#
#   bench/pass-compare.sh --a OLD/stream-infer --b build/tools/stream-infer --model M.gguf
#                         [-n 33] [--runs 6]
#
# An older checkout's binary: git worktree add /tmp/old REV && meson setup /tmp/old/build
# /tmp/old && ninja -C /tmp/old/build tools/stream-infer (then git worktree remove).
set -u -o pipefail
A= B= MODEL= N=33 RUNS=6
while [ $# -gt 0 ]; do
    case $1 in
    --a) A=${2:?}; shift 2 ;;
    --b) B=${2:?}; shift 2 ;;
    --model) MODEL=${2:?}; shift 2 ;;
    -n) N=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pass-compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for f in "$A" "$B"; do [ -x "$f" ] || { echo "pass-compare.sh: '$f' is not an executable (give --a and --b)" >&2; exit 2; }; done
[ -f "$MODEL" ] || { echo "pass-compare.sh: --model: '$MODEL' is not a file" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$A" -m "$MODEL" --prompt-ids 1 -n 1 --direct off -q --print-ids >/dev/null 2>&1 # warm the page cache
for ((i = 1; i <= RUNS; i++)); do
    for v in a b; do
        bin=$A; [ $v = b ] && bin=$B
        /usr/bin/time -f "%U" -o "$tmp/cpu-$v-$i" "$bin" -m "$MODEL" --prompt-ids "1 2 3" -n "$N" --temp 0 \
            --direct off -q --print-ids --report-json "$tmp/r-$v-$i.json" >/dev/null 2>"$tmp/err" ||
            { echo "pass-compare.sh: $bin failed:" >&2; cat "$tmp/err" >&2; exit 1; }
    done
done
python3 - "$tmp" "$RUNS" "$A" "$B" <<'PY'
import json, statistics, sys
tmp, runs, names = sys.argv[1], int(sys.argv[2]), {"a": sys.argv[3], "b": sys.argv[4]}
med = {}
for v in "ab":
    rs = [json.load(open(f"{tmp}/r-{v}-{i}.json")) for i in range(1, runs + 1)]
    per = [r["pass_s"] / r["passes"] for r in rs]
    cpu = [float(open(f"{tmp}/cpu-{v}-{i}").read().split()[-1]) for i in range(1, runs + 1)]
    med[v] = statistics.median(per)
    print(f"{v}: {names[v]}: {rs[0]['passes']} passes; per pass median {med[v]*1e3:.2f} ms, "
          f"min {min(per)*1e3:.2f} ms; user CPU median {statistics.median(cpu):.3f} s")
print(f"b / a per pass (medians): {med['b'] / med['a']:.3f}")
PY
