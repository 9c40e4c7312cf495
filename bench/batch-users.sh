#!/bin/bash
# batch-users.sh: how many users share a pass. Runs stream-infer --batch-file with
# 1, 2, 4, ... concurrent requests inside one K230-like envelope (bench/envelope.sh:
# the model on a throttled loop device, a memory cgroup) and prints, per user count,
# passes, tokens generated per pass, aggregate tokens/s, its ratio to one user's
# (measured in the same run), request latency and the cgroup's peak memory.
# (Requests that arrive while others run: bench/server-join.sh.)
#
#   sudo bench/batch-users.sh --model M.gguf [--bw 100] [--mem 448] [--users "1 2 4 8 16"]
#                             [-n 8] [--out DIR] [--plot FILE.png]
#
# The model: tools/mkmodel --preset llama3-8b-q2_k --vocab .../llama3-vocab.gguf -o M.gguf
# (3.2 GB). Each user count costs about n passes of (bytes per pass / bandwidth).
# --plot draws aggregate tokens/s against users beside users x one user's (gnuplot).
# --summary-only --out DIR: the table (and plot) of an earlier run's reports in DIR.
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
MODEL= BW=100 MEM=448 USERS="1 2 4 8 16" N=8 OUT= PLOT= SUMMARY_ONLY=
BUILD=${BUILD:-$root/build}
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
. "$here/lib.sh"
while [ $# -gt 0 ]; do
    bench_opt "$@"
    [ "$BENCH_SHIFT" -gt 0 ] && { shift "$BENCH_SHIFT"; continue; }
    case $1 in
    --users) USERS=${2:?--users needs counts}; shift 2 ;;
    --plot) PLOT=${2:?--plot needs a file}; shift 2 ;;
    --summary-only) SUMMARY_ONLY=1; shift ;;
    *) bench_die "unknown option '$1' (see --help)" ;;
    esac
done
if [ -n "$SUMMARY_ONLY" ]; then
    [ -n "$OUT" ] && [ -d "$OUT" ] || bench_die "--summary-only needs --out DIR of an earlier run"
else
    bench_need_model
    bench_need_built tools/stream-infer
fi
if [ -z "$SUMMARY_ONLY" ]; then
bench_out_dir batch-users
cp "$BUILD/tools/stream-infer" "$OUT/stream-infer"

# One batch file per user count: distinct prompts of about 8 words each.
words=(once upon a time there lived small robot who liked reading manual pages about old
       file systems and the sea under bright stars near quiet harbour towns where nobody)
for u in $USERS; do
    : > "$OUT/users-$u.txt"
    for ((i = 0; i < u; i++)); do
        line=
        for ((k = 0; k < 8; k++)); do line+="${words[$(((i * 7 + k * 3) % ${#words[@]}))]} "; done
        echo "$line" >> "$OUT/users-$u.txt"
    done
done

cat > "$OUT/inside.sh" <<EOF
#!/bin/bash
set -u
model="\$ENVELOPE_DIR/$(basename "$MODEL")"
for u in $USERS; do
    echo "batch-users: \$u users" >&2
    [ -n "\${ENVELOPE_MEM_CGROUP:-}" ] && [ -w "\$ENVELOPE_MEM_CGROUP/memory.max_usage_in_bytes" ] &&
        echo 0 > "\$ENVELOPE_MEM_CGROUP/memory.max_usage_in_bytes"
    "$OUT/stream-infer" -m "\$model" --batch-file "$OUT/users-\$u.txt" --parallel \$u -n $N --temp 0 \\
        --device-mbps $BW --report-json "$OUT/report-\$u.json" -q > "$OUT/out-\$u.jsonl" || exit 1
    peak=
    for f in memory.max_usage_in_bytes memory.peak; do
        [ -r "\$ENVELOPE_MEM_CGROUP/\$f" ] && peak=\$(cat "\$ENVELOPE_MEM_CGROUP/\$f") && break
    done
    echo "\${peak:-0}" > "$OUT/peak-\$u.txt"
done
EOF
chmod +x "$OUT/inside.sh"
"$here/envelope.sh" --bw "$BW" --mem "$MEM" --file "$MODEL" --image-dir "$(dirname "$MODEL")" -q \
    --summary "$OUT/envelope.txt" -- "$OUT/inside.sh" || { echo "batch-users.sh: the envelope run failed" >&2; exit 1; }
fi

report() {
python3 - "$OUT" "$BW" "$MEM" $USERS <<'PY'
import json, sys
out, bw, mem, users = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), [int(u) for u in sys.argv[4:]]
rows = []
for u in users:
    r = json.load(open(f"{out}/report-{u}.json"))
    peak = int(open(f"{out}/peak-{u}.txt").read().strip() or 0)
    tps = r["tokens_generated_all"] / r["pass_s"] if r["pass_s"] else 0
    rows.append((u, r, peak, tps))
one = rows[0][3] if rows and rows[0][0] == 1 else None
print(f"# {bw:g} MB/s, {mem} MiB envelope; ratios against 1 user measured in this run")
print("users passes gen/pass tok/s  x_one  achieved/device ttft_mean total_mean peak_MiB budget_MiB")
for u, r, peak, tps in rows:
    ach = r["bytes_read"] / 1e6 / r["pass_s"] / bw if r["pass_s"] else 0
    print(f"{u:5d} {r['passes']:6d} {r['generated_per_pass']:8.2f} {tps:6.3f} "
          f"{(tps / one if one else 0):6.2f} {ach:15.3f} {r.get('ttft_mean_s', 0):9.1f} {r.get('total_mean_s', 0):10.1f} "
          f"{peak / 1048576:8.1f} {r['mem_budget_bytes'] / 1048576:10.1f}")
with open(f"{out}/users.dat", "w") as f:
    for u, r, peak, tps in rows:
        f.write(f"{u} {tps} {u * one if one else 0}\n")
PY
}
report | tee "$OUT/summary.txt"
if [ -n "$PLOT" ]; then
    if command -v gnuplot >/dev/null; then
        gnuplot <<GP
set terminal pngcairo size 900,600 noenhanced
set output '$PLOT'
set title 'Aggregate tokens/s against concurrent users ($BW MB/s, $MEM MiB envelope)'
set xlabel 'users (concurrent requests)'
set ylabel 'tokens generated per second'
set logscale x 2
set key top left
set grid
plot '$OUT/users.dat' using 1:3 with lines dashtype 2 title 'users x one user (ideal)', \
     '$OUT/users.dat' using 1:2 with linespoints pointtype 7 title 'measured'
GP
        echo "batch-users.sh: wrote $PLOT" >&2
    else
        echo "batch-users.sh: gnuplot not installed (apt-get install gnuplot-nox): no plot" >&2
    fi
fi
echo "batch-users.sh: reports in $OUT" >&2
