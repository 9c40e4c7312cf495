#!/bin/bash
# pin-envelope.sh: what pinning buys in the K230-like envelope (issue 13's targets).
#
#   sudo bench/pin-envelope.sh --model M.gguf [--bw 100] [--mem 448] [-n 10]
#                              [--users 8] [--out DIR] [--build DIR] [-- EXTRA ARGS]
#
# In one bench/envelope.sh run (the model on a loop device throttled to --bw MB/s, a
# memory cgroup of --mem MiB): io-bench measures the device's bandwidth; then
# stream-infer runs -p "Once upon a time, " -n N with --pin none and with the default
# --pin auto, and --users concurrent requests (--batch-file, --parallel USERS) of N
# tokens each with the default pins; each run from a cold cache, with the cgroup's
# peak memory and OOM kills of its own. Printed per run, against (file bytes / the
# bandwidth io-bench measured in the same run): time per generated token after the
# first, time to first token against one unpinned pass, bytes per pass, pins held,
# released and restored, the cgroup's peak. EXTRA ARGS go to every stream-infer run.
#
# The model: tools/mkmodel --preset llama3-8b-q2_k --vocab .../llama3-vocab.gguf -o M.gguf
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
MODEL= BW=100 MEM=448 N=10 USERS=8 OUT= BUILD=$root/build
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
. "$here/lib.sh"
while [ $# -gt 0 ]; do
    bench_opt "$@"
    [ "$BENCH_SHIFT" -gt 0 ] && { shift "$BENCH_SHIFT"; continue; }
    case $1 in
    --users) USERS=${2:?--users needs a count}; shift 2 ;;
    --) shift; break ;;
    *) bench_die "unknown option '$1' (see --help)" ;;
    esac
done
bench_need_model
bench_need_built bench/io-bench tools/stream-infer
bench_out_dir pin-envelope
cp "$BUILD/tools/stream-infer" "$BUILD/bench/io-bench" "$OUT/"
if [ $# -gt 0 ]; then printf '%q ' "$@"; fi >"$OUT/extra-args"
words=(once upon a time there lived small robot who liked reading manual pages about old
       file systems and the sea under bright stars near quiet harbour towns where nobody)
: >"$OUT/users.txt"
for ((i = 0; i < USERS; i++)); do
    line=
    for ((k = 0; k < 8; k++)); do line+="${words[$(((i * 7 + k * 3) % ${#words[@]}))]} "; done
    echo "$line" >>"$OUT/users.txt"
done
IOB_BYTES=$(awk -v b="$BW" 'BEGIN { m = b > 0 ? int(b * 1.3 * 1e6 / 1048576) : 256; if (m < 8) m = 8; print m "M" }')

cat >"$OUT/inside.sh" <<EOF
#!/bin/bash
set -u
m="\$ENVELOPE_DIR/$(basename "$MODEL")"
cg=\$ENVELOPE_MEM_CGROUP
"$OUT/io-bench" --max-bytes $IOB_BYTES --csv "$OUT/io-bench.csv" "\$m" >"$OUT/io-bench.txt" || echo "io-bench failed" >&2
dev=\$(awk -F, 'NR > 1 && \$1 == "confirm" { print \$8 }' "$OUT/io-bench.csv" | head -n1)
[ -n "\$dev" ] || dev=\$(awk -F, 'NR > 1 && \$1 == "raw" && \$8 > b { b = \$8 } END { if (b) print b }' "$OUT/io-bench.csv")
echo "\${dev:-0}" >"$OUT/device-mbps.txt"
eval "set -- \$(cat "$OUT/extra-args")"
# run NAME ARGS...: cold cache, the cgroup's peak and OOM kills of this run alone
run() {
    local name=\$1 oom0 oom1 peak
    shift
    echo "pin-envelope: \$name" >&2
    sync; echo 3 >/proc/sys/vm/drop_caches
    if [ "\$ENVELOPE_CGROUP_VERSION" = v1 ]; then
        echo 0 >"\$cg/memory.max_usage_in_bytes"
        oom0=\$(awk '\$1 == "oom_kill" { print \$2 }' "\$cg/memory.oom_control")
    else
        echo 0 >"\$cg/memory.peak" 2>/dev/null
        oom0=\$(awk '\$1 == "oom_kill" { print \$2 }' "\$cg/memory.events")
    fi
    "$OUT/stream-infer" -m "\$m" --device-mbps "\${dev:-$BW}" --report-json "$OUT/\$name.json" -q "\$@" \\
        >"$OUT/\$name.out" 2>"$OUT/\$name.err"
    echo "status=\$?" >"$OUT/\$name.cgroup"
    if [ "\$ENVELOPE_CGROUP_VERSION" = v1 ]; then
        peak=\$(cat "\$cg/memory.max_usage_in_bytes")
        oom1=\$(awk '\$1 == "oom_kill" { print \$2 }' "\$cg/memory.oom_control")
    else
        peak=\$(cat "\$cg/memory.peak" 2>/dev/null || echo 0)
        oom1=\$(awk '\$1 == "oom_kill" { print \$2 }' "\$cg/memory.events")
    fi
    printf "peak=%s\noom_kill=%s\n" "\$peak" "\$((oom1 - oom0))" >>"$OUT/\$name.cgroup"
}
run pin-none -p "Once upon a time, " -n $N --pin none "\$@"
run pin-auto -p "Once upon a time, " -n $N "\$@"
run users-$USERS --batch-file "$OUT/users.txt" --parallel $USERS -n $N "\$@"
EOF
chmod +x "$OUT/inside.sh"
"$here/envelope.sh" --bw "$BW" --mem "$MEM" --file "$MODEL" --image-dir "$(dirname "$MODEL")" -q \
    --summary "$OUT/envelope.txt" -- "$OUT/inside.sh" || echo "pin-envelope.sh: the envelope run failed" >&2

python3 - "$OUT" "$MODEL" "$BW" "$MEM" "$USERS" "$N" <<'PY' | tee "$OUT/summary.txt"
import json, os, sys
out, model, bw, mem, users = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
n = int(sys.argv[6])
dev = float(open(f"{out}/device-mbps.txt").read().strip() or 0) or bw
file_bytes = os.path.getsize(model)
file_s = file_bytes / 1e6 / dev
print(f"# {bw:g} MB/s throttle, io-bench measured {dev:.2f} MB/s; {mem} MiB cgroup; file {file_bytes / 1e9:.3f} GB "
      f"= {file_s:.2f} s at that bandwidth")
print("run          status tok/pass  s/token  ratio  ttft_s ttft/pass pass_GB pinned_MiB held/planned released "
      "restored peak_MiB oom")
for name in ("pin-none", "pin-auto", f"users-{users}"):
    try:
        r = json.load(open(f"{out}/{name}.json"))
    except (OSError, ValueError):
        print(f"{name:12s} no report (see {out}/{name}.err)")
        continue
    cg = dict(l.strip().split("=", 1) for l in open(f"{out}/{name}.cgroup") if "=" in l)
    # time per generated token after the first (of each request, for the batch)
    if "total_mean_s" in r and n > 1:
        per_tok = (r["total_mean_s"] - r["ttft_mean_s"]) / (n - 1)
    elif r.get("tokens_generated", 0) > 1:
        per_tok = r["gen_s"] / (r["tokens_generated"] - 1)
    else:
        per_tok = r["pass_s"] / max(r["passes"], 1)
    one_pass = r["bytes_per_pass_unpinned"] / 1e6 / dev
    ttft = r.get("ttft_s") or r.get("ttft_mean_s", 0)
    print(f"{name:12s} {cg.get('status', '?'):>6s} {r.get('generated_per_pass', 1):8.2f} {per_tok:8.2f} "
          f"{per_tok / file_s:6.3f} {ttft:7.2f} {ttft / one_pass:9.3f} {r['bytes_per_pass'] / 1e9:7.3f} "
          f"{r['pinned_bytes'] / 1048576:10.1f} {r.get('pins_held', 0):5d}/{r.get('pinned_tensors', 0):<6d} "
          f"{r.get('pins_released', 0):8d} {r.get('pins_restored', 0):8d} {int(cg.get('peak', 0)) / 1048576:8.1f} "
          f"{cg.get('oom_kill', '?'):>3s}")
PY
echo "pin-envelope.sh: reports in $OUT" >&2
