#!/bin/bash
# server-join.sh: a request that arrives while another runs joins the next pass; it
# does not wait for the first to finish. Inside one K230-like envelope
# (bench/envelope.sh), stream-server serves the model; request A asks for A_TOKENS
# tokens; when A's first token has arrived (one pass), request B arrives asking for
# B_TOKENS. Both stream; every chunk's arrival time is recorded. Prints the pass time,
# B's wait for its first token in passes, and whether B finished before A.
#
#   sudo bench/server-join.sh --model M.gguf [--bw 25] [--mem 448] [--a-tokens 6]
#                             [--b-tokens 2] [--out DIR] [--build DIR]
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
MODEL= BW=25 MEM=448 A_TOKENS=6 B_TOKENS=2 OUT=
BUILD=${BUILD:-$root/build}
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
BENCH_COMMON="--model --bw --mem --out --build"
. "$here/lib.sh"
while [ $# -gt 0 ]; do
    bench_opt "$@"
    [ "$BENCH_SHIFT" -gt 0 ] && { shift "$BENCH_SHIFT"; continue; }
    case $1 in
    --a-tokens) A_TOKENS=${2:?--a-tokens needs a count}; shift 2 ;;
    --b-tokens) B_TOKENS=${2:?--b-tokens needs a count}; shift 2 ;;
    *) bench_die "unknown option '$1' (see --help)" ;;
    esac
done
bench_need_model
[ -x "$BUILD/tools/stream-server" ] || bench_die "$BUILD/tools/stream-server is missing (build with libmicrohttpd-dev and libjansson-dev)"
bench_out_dir server-join
cp "$BUILD/tools/stream-server" "$OUT/stream-server"

cat > "$OUT/inside.sh" <<EOF
#!/bin/bash
set -u
"$OUT/stream-server" -m "\$ENVELOPE_DIR/$(basename "$MODEL")" --port 0 --port-file "$OUT/port" --parallel 4 \\
    --sse-keepalive 5 -q 2> "$OUT/server.log" &
pid=\$!
python3 "$OUT/clients.py" "$OUT" $A_TOKENS $B_TOKENS
rc=\$?
kill -TERM \$pid
wait \$pid || rc=1
exit \$rc
EOF
chmod +x "$OUT/inside.sh"

cat > "$OUT/clients.py" <<'PY'
import http.client, json, os, sys, threading, time
out, a_tokens, b_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(600):
    if os.path.exists(f"{out}/port") and open(f"{out}/port").read().strip():
        break
    time.sleep(0.5)
port = int(open(f"{out}/port").read())
t0 = time.monotonic()
def stream(name, prompt, n, log):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": n, "temperature": 0, "stream": True})
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    log.append((name, "sent", 0.0))
    start = time.monotonic() - t0
    log[-1] = (name, "sent", start)
    for line in r:
        line = line.decode().strip()
        if line.startswith("data: ") and line != "data: [DONE]":
            d = json.loads(line[6:])
            if d.get("choices") and d["choices"][0].get("text"):
                log.append((name, "token", time.monotonic() - t0))
    log.append((name, "done", time.monotonic() - t0))
while True:  # the model loads first
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/health")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.5)
t0 = time.monotonic()
log = []
ta = threading.Thread(target=stream, args=("A", "Once upon a time there was", a_tokens, log))
ta.start()
while not any(e[0] == "A" and e[1] == "token" for e in log):
    time.sleep(0.05)
tb = threading.Thread(target=stream, args=("B", "The following options are supported:", b_tokens, log))
tb.start()
ta.join(); tb.join()
json.dump(log, open(f"{out}/events.json", "w"))
PY

"$here/envelope.sh" --bw "$BW" --mem "$MEM" --file "$MODEL" --image-dir "$(dirname "$MODEL")" -q \
    --summary "$OUT/envelope.txt" -- "$OUT/inside.sh" || { echo "server-join.sh: the envelope run failed" >&2; exit 1; }

python3 - "$OUT" <<'PY'
import json, sys
ev = json.load(open(f"{sys.argv[1]}/events.json"))
def times(name, kind): return [t for n, k, t in ev if n == name and k == kind]
a_tok, b_tok = times("A", "token"), times("B", "token")
pass_s = (a_tok[-1] - a_tok[0]) / (len(a_tok) - 1) if len(a_tok) > 1 else float("nan")
b_sent, a_done, b_done = times("B", "sent")[0], times("A", "done")[0], times("B", "done")[0]
print(f"A: first token {a_tok[0]:.1f} s, {len(a_tok)} tokens, done {a_done:.1f} s; one pass = {pass_s:.1f} s")
print(f"B: sent {b_sent:.1f} s, first token {b_tok[0]:.1f} s = {(b_tok[0] - b_sent) / pass_s:.2f} passes after it arrived, "
      f"{len(b_tok)} tokens, done {b_done:.1f} s ({'before' if b_done < a_done else 'after'} A)")
print("chunks:", " ".join(f"{n}@{t:.0f}" for n, k, t in ev if k == "token"))
PY
echo "server-join.sh: results in $OUT" >&2
