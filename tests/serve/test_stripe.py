#!/usr/bin/env python3
"""stream-server on a striped pack (two members in two directories, the second found
through --stripe-path): greedy answers are those of the GGUF it was made from, and
/metrics gives each member's bytes and busy time, the members' bytes adding up to
the total.

usage: test_stripe.py STREAM_SERVER STREAM_INFER MKMODEL REPACK
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, args, check, fail, model, workdir  # noqa: E402

REQ = {"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, timeout=300)
    check(r.returncode == 0, "%s failed: %s" % (" ".join(cmd), r.stderr.decode(errors="replace")))


def answer(server_exe, model, extra=()):
    srv = Server(server_exe, model, ["--pin", "none"] + list(extra))
    try:
        srv.wait_ready()
        st, r = srv.post("/v1/completions", REQ, timeout=60)
        check(st == 200, "%s: %d %r" % (model, st, r))
        st, _, body = srv.request("GET", "/metrics", timeout=10)
        check(st == 200, "GET /metrics: %d" % st)
        return r["choices"][0]["text"], body.decode()
    finally:
        srv.stop()


def main():
    server_exe, _, mkmodel = args()
    if len(sys.argv) < 5:
        fail("usage: %s STREAM_SERVER STREAM_INFER MKMODEL REPACK" % sys.argv[0])
    repack = sys.argv[4]
    d = os.path.join(workdir(), "serve-stripe-%d" % os.getpid())
    da, db = os.path.join(d, "a"), os.path.join(d, "b")
    os.makedirs(da, exist_ok=True)
    os.makedirs(db, exist_ok=True)
    gguf, _ = model(mkmodel)  # the fixture tiny-trained model (real text) when there is one
    m0, m1 = os.path.join(da, "m.s0.pack"), os.path.join(db, "m.s1.pack")
    run([repack, gguf, "--stripe", m0 + "," + m1, "--chunk", "64K"])

    text_gguf, _ = answer(server_exe, gguf)
    text_stripe, met = answer(server_exe, m0, ["--stripe-path", db])
    check(text_stripe == text_gguf, "striped pack answers %r, the GGUF %r" % (text_stripe, text_gguf))

    def samples(name):
        out = {}
        for m in re.finditer(r'^streaminfer_%s\{member="(\d+)",path="([^"]*)"\} (\S+)$' % name, met, re.M):
            out[int(m.group(1))] = (m.group(2), float(m.group(3)))
        return out

    by = samples("file_bytes_read_total")
    busy = samples("file_busy_seconds_total")
    check(sorted(by) == [0, 1] and sorted(busy) == [0, 1], "per-member metrics missing:\n%s" % met)
    check(os.path.samefile(by[0][0], m0) and os.path.samefile(by[1][0], m1), "member paths: %r" % by)
    check(by[0][1] > 0 and by[1][1] > 0 and busy[0][1] > 0 and busy[1][1] > 0, "a member idle: %r %r" % (by, busy))
    total = re.search(r"^streaminfer_bytes_read_total (\S+)$", met, re.M)
    check(total and float(total.group(1)) == by[0][1] + by[1][1],
          "members' bytes %r do not add up to the total %s" % (by, total and total.group(1)))
    print("striped pack: same answer as the GGUF (%r); member bytes %d + %d" % (text_stripe, by[0][1], by[1][1]))


if __name__ == "__main__":
    main()
