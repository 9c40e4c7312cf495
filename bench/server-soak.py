#!/usr/bin/env python3
"""Server soak with random cancellations (docs/FUZZING.md).

Starts the real stream-server on an ephemeral port with an mkmodel micro model (Q8_0,
seed 1: greedy text never ends by itself) and sends N requests from 4 client threads:
/v1/completions and /v1/chat/completions, streamed or whole, max_tokens 1..48. A
random share (--cancel, default 0.3) is cancelled by the client: streamed ones close
the socket after reading a random number of events, whole ones shut the socket down
while the answer is being made. The server's resident memory (VmRSS of
/proc/PID/status) is read after every request.

Checks: every request that was not cancelled gets a complete answer (200, [DONE] or a
JSON body with usage); after the last one /metrics shows no sequence active or queued
and the request outcomes add up to N (cells of cancelled requests that were never freed
would soon leave none for new ones: the context is --ctx cells, the soak's cancelled
requests hold many times that; finished ones stay in the prompt cache by design);
VmRSS after warm-up (the first --warmup requests) never exceeds the value at the end of
warm-up by more than --slack KiB (not checked in an ASan build, whose quarantine of freed
blocks grows RSS: LSan checks the exit for leaks there); SIGTERM ends the server with exit status 0 and no
sanitizer report (under ASan: no leak). Prints RSS first/after warm-up/max/last.

usage: server-soak.py STREAM_SERVER MKMODEL [-n N] [--cancel P] [--warmup W]
                      [--slack KIB] [--seed S] [--ctx N]
(--ctx, default 512: the server's context; the prompt cache touches every KV cell of it
during warm-up, so what grows after that is not the cache filling up)
exit: 0 pass, 1 fail, 77 skip (emulated)
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail("no VmRSS for %d" % pid)


class Soak:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.next = 0
        self.rss = []       # (request number, KiB)
        self.errors = []
        self.cancelled = 0
        self.completed = 0

    def take(self):
        with self.lock:
            if self.next >= self.a.n or self.errors:
                return None
            self.next += 1
            return self.next - 1

    def one(self, rng, i):
        chat = rng.random() < 0.3
        stream = rng.random() < 0.7
        cancel = rng.random() < self.a.cancel
        n = rng.randint(1, 48)
        body = {"max_tokens": n, "temperature": rng.choice([0, 0.8]), "seed": i, "stream": stream}
        if chat:
            path = "/v1/chat/completions"
            body["messages"] = [{"role": "user", "content": "Tell me a story %d" % i}]
        else:
            path = "/v1/completions"
            body["prompt"] = "Once upon a time %d" % (i % 7)
        raw = json.dumps(body).encode()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        try:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % (path.encode(), len(raw)) + raw)
            if cancel and stream:
                want = rng.randint(1, max(1, n // 2))
                buf = b""
                while buf.count(b"data: ") < want:
                    c = s.recv(65536)
                    if not c:
                        break
                    buf += c
                return "cancelled"
            if cancel:
                time.sleep(rng.uniform(0, 0.02))
                s.shutdown(socket.SHUT_RDWR)
                return "cancelled"
            buf = b""
            while True:
                c = s.recv(65536)
                if not c:
                    break
                buf += c
            head, _, payload = buf.partition(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                return "request %d: %r" % (i, buf[:300])
            if stream:
                if b"data: [DONE]" not in payload:
                    return "request %d: stream without [DONE]: %r" % (i, payload[-300:])
            elif b'"usage"' not in payload:
                return "request %d: no usage in %r" % (i, payload[-300:])
            return "ok"
        finally:
            s.close()

    def worker(self, seed):
        rng = random.Random(seed)
        while True:
            i = self.take()
            if i is None:
                return
            try:
                r = self.one(rng, i)
            except OSError as e:
                r = "request %d: %s" % (i, e)
            kib = rss_kib(self.pid)
            with self.lock:
                self.rss.append((i, kib))
                if r == "cancelled":
                    self.cancelled += 1
                elif r == "ok":
                    self.completed += 1
                else:
                    self.errors.append(r)


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("mkmodel")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--cancel", type=float, default=0.3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--slack", type=int, default=512)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=512)
    a = ap.parse_args()
    if os.environ.get("SI_EMULATED"):
        print("SKIP: the server soak runs natively only", file=sys.stderr)
        sys.exit(77)
    ldd = subprocess.run(["ldd", a.server], capture_output=True, text=True).stdout
    sanitized = "libasan" in ldd
    root = os.environ.get("SI_BUILD_ROOT", ".")
    d = os.path.join(root, "test-models")
    os.makedirs(d, exist_ok=True)
    model = os.path.join(d, "soak-q8-seed1.gguf")
    if not os.path.exists(model):
        tmp = model + ".%d" % os.getpid()
        r = subprocess.run([a.mkmodel, "-o", tmp, "--type", "Q8_0", "--seed", "1"], capture_output=True, timeout=120)
        if r.returncode:
            fail("mkmodel: %r" % r.stderr)
        os.replace(tmp, model)
    work = tempfile.mkdtemp(prefix="si-soak-", dir=d)
    port_file, log_path = os.path.join(work, "port"), os.path.join(work, "server.log")
    log = open(log_path, "wb")
    p = subprocess.Popen([a.server, "-m", model, "--port", "0", "--port-file", port_file, "--parallel", "4",
                          "-c", str(a.ctx), "--pin", "none", "-q"], stdout=log, stderr=subprocess.STDOUT)

    def log_text():
        log.flush()
        with open(log_path, "rb") as f:
            return f.read().decode(errors="replace")

    port = None
    t_end = time.time() + 60
    while port is None:
        if p.poll() is not None or time.time() > t_end:
            p.kill()
            fail("server not listening:\n" + log_text())
        try:
            with open(port_file) as f:
                port = int(f.read().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    while True:
        try:
            if metrics(port).get("streaminfer_ready") == 1:
                break
        except OSError:
            pass
        if p.poll() is not None or time.time() > t_end:
            p.kill()
            fail("server not ready:\n" + log_text())
        time.sleep(0.05)

    S = Soak(a)
    S.pid, S.port = p.pid, port
    rss0 = rss_kib(p.pid)
    t0 = time.time()
    ts = [threading.Thread(target=S.worker, args=(a.seed * 100 + k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=max(60, a.n))  # a deadline: about a second a request at worst
    hung = any(t.is_alive() for t in ts)
    wall = time.time() - t0
    m = None
    if not hung and not S.errors:
        t_end = time.time() + 30
        while True:
            m = metrics(port)
            if m["streaminfer_active_sequences"] == 0 and m["streaminfer_queued_requests"] == 0:
                break
            if time.time() > t_end:
                S.errors.append("sequences still active 30 s after the last request: %r" % m)
                break
            time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("no exit within 60 s of SIGTERM:\n" + log_text())
    text = log_text()
    if hung:
        fail("a client thread hung (no answer within its deadline); server log:\n" + text[-3000:])
    if S.errors:
        fail("%d errors, the first: %s" % (len(S.errors), S.errors[0]))
    if "Sanitizer" in text or "runtime error" in text:
        fail("sanitizer report:\n" + text)
    if rc != 0:
        fail("exit status %d after SIGTERM:\n%s" % (rc, text[-3000:]))
    outcomes = {k: int(v) for k, v in m.items() if k.startswith("streaminfer_requests_total")}
    served = sum(v for k, v in outcomes.items() if "rejected" not in k)
    if served != a.n:
        fail("the outcomes add up to %d, not %d: %r" % (served, a.n, outcomes))
    rss = [k for _, k in sorted(S.rss)]
    w = min(a.warmup, len(rss) - 1)
    after = rss[w:]
    grow = max(after) - rss[w]
    print("requests %d in %.1f s: %d completed, %d cancelled by the client (server outcomes %s)" % (
        a.n, wall, S.completed, S.cancelled,
        ", ".join("%s %d" % (k.split('"')[1], v) for k, v in sorted(outcomes.items()))))
    print("VmRSS KiB: before %d, first %d, after warm-up (%d) %d, max %d, last %d; growth after warm-up %d"
          % (rss0, rss[0], w, rss[w], max(rss), rss[-1], grow), flush=True)
    if sanitized:
        print("note: a sanitizer build: RSS grows with ASan's quarantine of freed blocks, so it is not "
              "checked; LSan checked the exit for leaks")
    elif grow > a.slack:
        fail("resident memory grew by %d KiB after warm-up (more than %d)" % (grow, a.slack))
    return 0


sys.exit(main())
