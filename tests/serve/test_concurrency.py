#!/usr/bin/env python3
"""16 concurrent clients against --parallel 4 --max-queued 8: each gets a completion
(200) or a JSON 429 within the deadline, the server's counters agree, nothing stays
active; a queued streaming request gets ': keep-alive' comments while it waits."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, args, check, model, stream_request  # noqa: E402

CLIENTS = 16
DEADLINE = 120


def main():
    server_exe, _, mkmodel = args()
    path, _ = model(mkmodel)
    srv = Server(server_exe, path, ["--parallel", "4", "--max-queued", "8", "--sse-keepalive", "0.05"])
    try:
        srv.wait_ready()
        results = [None] * CLIENTS
        barrier = threading.Barrier(CLIENTS)

        def client(i):
            barrier.wait()
            t0 = time.time()
            try:
                st, _, body = srv.request("POST", "/v1/completions",
                                          {"prompt": "Client %d says" % i, "max_tokens": 96, "temperature": 0.5,
                                           "seed": i}, timeout=DEADLINE)
                results[i] = (st, json.loads(body), time.time() - t0)
            except Exception as e:  # noqa: BLE001
                results[i] = ("exception", repr(e), time.time() - t0)

        t0 = time.time()
        th = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in th:
            t.start()
        for t in th:
            t.join(DEADLINE + 10)
        elapsed = time.time() - t0
        ok = busy = 0
        for i, r in enumerate(results):
            check(r is not None, "client %d got no answer within %d s" % (i, DEADLINE))
            st, body, dt = r
            check(st in (200, 429), "client %d: %r" % (i, r))
            if st == 200:
                ok += 1
                check(body["choices"][0]["finish_reason"] in ("stop", "length"), "client %d: %r" % (i, body))
            else:
                busy += 1
                e = body["error"]
                check(e["code"] == "queue_full" and e["type"] == "rate_limit_error" and e["message"],
                      "client %d 429 body: %r" % (i, body))
        check(ok >= 4, "only %d of %d completed" % (ok, CLIENTS))
        met = srv.metrics()
        check(met['streaminfer_requests_total{outcome="rejected"}'] == busy,
              "rejected counter %r != %d 429s" % (met['streaminfer_requests_total{outcome="rejected"}'], busy))
        check(met['streaminfer_http_responses_total{code="429"}'] == busy, "429 counter")
        check(met["streaminfer_active_sequences"] == 0 and met["streaminfer_queued_requests"] == 0,
              "sequences left: %r" % met)
        print("%d completed, %d refused with 429, in %.1f s" % (ok, busy, elapsed))

        # keep-alive: with one long request per slot, a queued stream hears comments
        srv2 = Server(server_exe, path, ["--parallel", "1", "--max-queued", "4", "--sse-keepalive", "0.05"])
        try:
            srv2.wait_ready()
            long_req = stream_request(srv2.port, "/v1/completions",
                                      {"prompt": "x", "max_tokens": 100000, "temperature": 0, "stream": True})
            time.sleep(0.2)
            s = stream_request(srv2.port, "/v1/completions",
                               {"prompt": "y", "max_tokens": 2, "temperature": 0, "stream": True})
            s.settimeout(30)
            buf = b""
            while b": keep-alive" not in buf and b"[DONE]" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            long_req.close()
            s.close()
            check(b": keep-alive" in buf, "no keep-alive comment on a queued stream: %r" % buf[:400])
        except BaseException:
            print(srv2.log_text(), file=sys.stderr)
            srv2.kill()
            raise
        srv2.stop()
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise
    srv.stop()
    print("ok")


if __name__ == "__main__":
    main()
