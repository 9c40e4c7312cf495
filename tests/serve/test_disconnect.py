#!/usr/bin/env python3
"""A client that goes away cancels its sequence: mid-stream, and while waiting for a
whole answer. /metrics then shows no active sequence and the cancelled requests; the
server keeps serving. SIGTERM with streams and queued requests in flight: they end,
and the server exits 0 (ASan: nothing leaked)."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, args, check, model, stream_request  # noqa: E402

CANCELLED = 'streaminfer_requests_total{outcome="cancelled"}'


def wait_metrics(srv, cond, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = srv.metrics()
        if cond(m):
            return m
        time.sleep(0.05)
    check(False, "%s within %d s: %r" % (what, timeout, srv.metrics()))


def main():
    server_exe, _, mkmodel = args()
    path, _ = model(mkmodel)
    srv = Server(server_exe, path, ["--parallel", "2"])
    long_req = {"prompt": "Once upon a time", "max_tokens": 100000, "temperature": 0}
    try:
        srv.wait_ready()
        # mid-stream: read some tokens, then close the socket
        s = stream_request(srv.port, "/v1/completions", dict(long_req, stream=True))
        buf = b""
        while buf.count(b"data: ") < 4:
            chunk = s.recv(4096)
            check(chunk, "the stream ended early: %r" % buf)
            buf += chunk
        check(b" 200 " in buf.split(b"\r\n", 1)[0], "status line: %r" % buf[:100])
        wait_metrics(srv, lambda m: m["streaminfer_active_sequences"] == 1, "one active sequence")
        s.close()
        m = wait_metrics(srv, lambda m: m["streaminfer_active_sequences"] == 0 and m[CANCELLED] >= 1,
                         "the stream's sequence freed")

        # a whole-answer request whose client leaves while it runs
        s = stream_request(srv.port, "/v1/completions", long_req)
        wait_metrics(srv, lambda m: m["streaminfer_active_sequences"] == 1, "one active sequence")
        time.sleep(0.2)
        s.shutdown(socket.SHUT_RDWR)
        s.close()
        wait_metrics(srv, lambda m: m["streaminfer_active_sequences"] == 0 and m[CANCELLED] >= 2,
                     "the waiting request's sequence freed")

        # still serving
        st, r = srv.post("/v1/completions", {"prompt": "Hello", "max_tokens": 4})
        check(st == 200, "after disconnects: %d %r" % (st, r))

        # shutdown with two streams running and one queued
        socks = [stream_request(srv.port, "/v1/completions", dict(long_req, stream=True)) for _ in range(3)]
        wait_metrics(srv, lambda m: m["streaminfer_active_sequences"] == 2, "two active sequences")
        t0 = time.time()
        log = srv.stop()
        check(time.time() - t0 < 30, "shutdown took %.1f s" % (time.time() - t0))
        for s in socks:
            s.settimeout(10)
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            s.close()
            check(b"data: [DONE]\n\n" in data and data.endswith(b"0\r\n\r\n") and b'"shutting_down"' in data,
                  "a stream at shutdown: %r" % data[-300:])
        check("shutting down" in log, "no shutdown message:\n" + log)
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise

    # --timeout: a request still running after it ends with 504 (or, streamed, an
    # error event and [DONE]); its sequence is freed
    srv = Server(server_exe, path, ["--timeout", "0.5"])
    try:
        srv.wait_ready()
        st, r = srv.post("/v1/completions", long_req)
        check(st == 504 and r["error"]["code"] == "timeout", "past --timeout: %d %r" % (st, r))
        rc, out, err = srv.curl("-N", "-H", "Content-Type: application/json", "-d",
                                json.dumps(dict(long_req, stream=True)), srv.url("/v1/completions"))
        check(rc == 0 and out.rstrip().endswith("data: [DONE]") and '"code":"timeout"' in out,
              "streamed past --timeout: %r" % out[-300:])
        m = wait_metrics(srv, lambda m: m["streaminfer_active_sequences"] == 0, "no sequence left")
        check(m['streaminfer_requests_total{outcome="timeout"}'] == 2, "timeout counter: %r" % m)
        st, r = srv.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2})
        check(st == 200, "a short request under --timeout: %d %r" % (st, r))
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise
    srv.stop()
    print("ok")


if __name__ == "__main__":
    main()
