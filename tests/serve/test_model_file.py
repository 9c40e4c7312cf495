#!/usr/bin/env python3
"""The model file changes under a running stream-server (--pin none, so every pass
reads the file).

  - replaced by rename (a new file, another model, moved over the path): the server
    keeps the file it opened (its descriptor holds the old inode), so answers stay
    exactly those of the old model; documented in stream-server(1);
  - truncated in place to half its size: a request fails with HTTP 500 and an error
    that names the file and what could not be read (tensor or layer, offset), a
    streamed one ends with an error event; /health still answers 200 and a later
    request gets the same clear error (no crash, no hang: every request has a
    deadline);
  - the file written back in place: requests succeed again with the old answers;
  - SIGTERM: exit 0, no sanitizer report (ASan: nothing leaked).
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, args, check, stream_request, sse_events, workdir  # noqa: E402

REQ = {"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}


def mk(mkmodel, out, seed):
    if not os.path.exists(out):
        tmp = out + ".%d" % os.getpid()
        r = subprocess.run([mkmodel, "-o", tmp, "--type", "Q8_0", "--seed", str(seed)], capture_output=True,
                           timeout=120)
        check(r.returncode == 0, "mkmodel failed: %r" % r.stderr)
        os.replace(tmp, out)


def completion(srv):
    st, r = srv.post("/v1/completions", REQ, timeout=30)
    return st, r


def main():
    server_exe, _, mkmodel = args()
    d = workdir()
    a, b = os.path.join(d, "mf-seed1.gguf"), os.path.join(d, "mf-seed2.gguf")
    mk(mkmodel, a, 1)
    mk(mkmodel, b, 2)
    live = os.path.join(d, "mf-live-%d.gguf" % os.getpid())
    shutil.copyfile(a, live)
    srv = Server(server_exe, live, ["--pin", "none", "--parallel", "2"])
    try:
        srv.wait_ready()
        st, r = completion(srv)
        check(st == 200, "first request: %d %r" % (st, r))
        text_a = r["choices"][0]["text"]

        # what the other model answers, for the rename check to mean something
        other = Server(server_exe, b, ["--pin", "none"])
        try:
            other.wait_ready()
            st, r2 = completion(other)
            check(st == 200, "the other model: %d %r" % (st, r2))
        finally:
            other.stop()
        check(r2["choices"][0]["text"] != text_a, "the two models answer alike: the rename check would prove nothing")

        # replaced by rename: the open file is served
        tmp = live + ".new"
        shutil.copyfile(b, tmp)
        os.rename(tmp, live)
        st, r = completion(srv)
        check(st == 200 and r["choices"][0]["text"] == text_a,
              "after rename: %d %r (the server should keep the file it opened)" % (st, r))
        # put the old model's bytes back under the name the server has open (same inode)
        # by truncating the inode it holds: reach it through /proc
        fd_path = None
        for fd in os.listdir("/proc/%d/fd" % srv.proc.pid):
            p = "/proc/%d/fd/%s" % (srv.proc.pid, fd)
            try:
                if os.readlink(p).startswith(live) and "(deleted)" in os.readlink(p):
                    fd_path = p
            except OSError:
                pass
        check(fd_path, "the server's descriptor of the replaced file was not found in /proc")
        size = os.path.getsize(a)

        # truncated in place (the inode the server reads)
        os.truncate(fd_path, size // 2)
        for i in range(2):
            st, r = completion(srv)
            msg = json.dumps(r)
            check(st == 500, "truncated, request %d: status %d %r" % (i, st, r))
            err = r.get("error", {}).get("message", "")
            check(live in err, "the error does not name the file: %r" % msg)
            check("offset" in err and "reading " in err,
                  "the error does not say what could not be read where: %r" % msg)
            st, _, body = srv.request("GET", "/health", timeout=10)
            check(st == 200, "/health after a failed request: %d %r" % (st, body))
        print("truncated: %s" % err)

        # streamed: the stream ends with an error event, then [DONE]
        s = stream_request(srv.port, "/v1/completions", dict(REQ, stream=True), timeout=30)
        raw = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            raw += c
            if raw.endswith(b"0\r\n\r\n"):
                break
        s.close()
        data, _ = sse_events(raw.decode(errors="replace"))
        errs = [x for x in data if x != "[DONE]" and "error" in json.loads(x)]
        check(raw.split(b"\r\n", 1)[0].find(b" 500 ") >= 0 or errs, "stream on a truncated file: %r" % raw[-400:])

        # written back in place: served again
        with open(a, "rb") as f:
            blob = f.read()
        with open(fd_path, "r+b") as f:
            f.write(blob)
        st, r = completion(srv)
        check(st == 200 and r["choices"][0]["text"] == text_a, "after the file was written back: %d %r" % (st, r))
    finally:
        srv.stop()
        os.unlink(live)
    print("ok: rename keeps the open file; truncation gives clear errors and the server stays up")


main()
