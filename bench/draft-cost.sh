#!/bin/bash
# draft-cost.sh: what guessing costs a pass. Inside one K230-like envelope
# (bench/envelope.sh), runs the same prompt with each --draft mode and prints per mode
# the passes, tokens evaluated and generated per pass, guesses per pass, compute per
# pass and pass time, and the pass time's ratio to --draft none's (same run).
#
#   sudo bench/draft-cost.sh --model M.gguf [--bw 100] [--mem 448] [-n 10]
#                            [--prompt TEXT] [--modes "none lookup auto"] [--out DIR]
#                            [--build DIR]
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
MODEL= BW=100 MEM=448 N=10 PROMPT="Once upon a time, " MODES="none lookup auto" OUT=
BUILD=${BUILD:-$root/build}
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
. "$here/lib.sh"
while [ $# -gt 0 ]; do
    bench_opt "$@"
    [ "$BENCH_SHIFT" -gt 0 ] && { shift "$BENCH_SHIFT"; continue; }
    case $1 in
    --prompt) PROMPT=${2:?--prompt needs text}; shift 2 ;;
    --modes) MODES=${2:?--modes needs a list}; shift 2 ;;
    *) bench_die "unknown option '$1' (see --help)" ;;
    esac
done
bench_need_model
bench_need_built tools/stream-infer
bench_out_dir draft-cost
cp "$BUILD/tools/stream-infer" "$OUT/stream-infer"
printf '%s' "$PROMPT" > "$OUT/prompt.txt"
cat > "$OUT/inside.sh" <<EOF
#!/bin/bash
set -u
for m in $MODES; do
    echo "draft-cost: --draft \$m" >&2
    "$OUT/stream-infer" -m "\$ENVELOPE_DIR/$(basename "$MODEL")" -p "\$(cat "$OUT/prompt.txt")" -n $N --temp 0 \\
        --draft \$m --device-mbps $BW -q --report-json "$OUT/report-\$m.json" > "$OUT/out-\$m.txt" || exit 1
done
EOF
chmod +x "$OUT/inside.sh"
"$here/envelope.sh" --bw "$BW" --mem "$MEM" --file "$MODEL" --image-dir "$(dirname "$MODEL")" -q \
    --summary "$OUT/envelope.txt" -- "$OUT/inside.sh" || { echo "draft-cost.sh: the envelope run failed" >&2; exit 1; }
python3 - "$OUT" $MODES <<'PY'
import json, sys
out, modes = sys.argv[1], sys.argv[2:]
rs = {m: json.load(open(f"{out}/report-{m}.json")) for m in modes}
base = rs.get("none")
print("mode    passes eval/pass gen/pass guessed/pass accepted/pass compute/pass  pass_s  x_none  same_text")
ref = open(f"{out}/out-none.txt").read() if base else None
for m, r in rs.items():
    p = r["passes"]
    per = r["pass_s"] / p
    x = per / (base["pass_s"] / base["passes"]) if base else float("nan")
    same = "yes" if ref is None or open(f"{out}/out-{m}.txt").read() == ref else "NO"
    print(f"{m:7s} {p:6d} {r['tokens_per_pass']:9.2f} {r['generated_per_pass']:8.2f} "
          f"{r['draft_proposed_per_pass']:12.2f} {r['draft_accepted_per_pass']:13.2f} {r['compute_s'] / p:11.2f}s "
          f"{per:7.2f} {x:7.3f}  {same}")
PY
echo "draft-cost.sh: reports in $OUT" >&2
