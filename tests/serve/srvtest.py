"""Shared by the stream-server tests: start the real server on an ephemeral port
against a fixture (or mkmodel) model, talk HTTP to it with deadlines, stop it with
SIGTERM and require exit status 0 with a clean log (no sanitizer report).

Exit codes follow meson: 0 pass, 77 skip (with a message), anything else fail.
usage of every test: test_X.py STREAM_SERVER STREAM_INFER MKMODEL
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def skip(msg):
    print(f"SKIP: {msg}", file=sys.stderr)
    sys.exit(SKIP)


def args():
    if len(sys.argv) < 4:
        fail("usage: %s STREAM_SERVER STREAM_INFER MKMODEL" % sys.argv[0])
    if os.environ.get("SI_EMULATED"):
        skip("stream-server tests run natively only (under %s)" % os.environ["SI_EMULATED"])
    return sys.argv[1], sys.argv[2], sys.argv[3]


def workdir():
    root = os.environ.get("SI_BUILD_ROOT", ".")
    d = os.path.join(root, "test-models")
    os.makedirs(d, exist_ok=True)
    return d


def model(mkmodel, trained=True):
    """A model with a real tokenizer and chat tokens: the fixture tiny-trained Q8_0,
    else an mkmodel Q8_0 model (built-in Llama 3 vocabulary). Returns (path, is_fixture)."""
    fx = os.environ.get("SI_FIXTURES", "")
    p = os.path.join(fx, "tiny-trained", "Q8_0.gguf")
    if trained and fx and os.path.exists(p):
        return p, True
    out = os.path.join(workdir(), "serve-q8-seed1.gguf")
    if not os.path.exists(out):
        tmp = out + ".%d" % os.getpid()
        # seed 1: its greedy text runs to the end of the context with no end-of-text token,
        # so long requests stay running until a test ends them (seed 7's ended at 325)
        r = subprocess.run([mkmodel, "-o", tmp, "--type", "Q8_0", "--seed", "1"], capture_output=True, timeout=120)
        check(r.returncode == 0, "mkmodel failed: %s" % r.stderr.decode(errors="replace"))
        os.replace(tmp, out)
    print("note: fixtures absent (SI_FIXTURES=%r): using an mkmodel model" % fx, file=sys.stderr)
    return out, False


class Server:
    def __init__(self, exe, model_path, extra=(), env=None, key=None):
        self.dir = tempfile.mkdtemp(prefix="si-serve-", dir=workdir())
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "server.log")
        self.key = key
        cmd = [exe, "-m", model_path, "--port", "0", "--port-file", self.port_file] + list(extra)
        if key:
            cmd += ["--api-key", key]
        e = dict(os.environ)
        e.update(env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=e)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                fail("stream-server exited with %d before listening:\n%s" % (self.proc.returncode, self.log_text()))
            try:
                with open(self.port_file) as f:
                    self.port = int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
        check(self.port is not None, "no port file within 30 s:\n" + self.log_text())

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail("stream-server exited with %d while loading:\n%s" % (self.proc.returncode, self.log_text()))
            try:
                st, _, body = self.request("GET", "/health", timeout=5)
                if st == 200:
                    check(json.loads(body) == {"status": "ok"}, "health body %r" % body)
                    return
                check(st == 503 and json.loads(body) == {"status": "loading"}, "health while loading: %d %r" % (st, body))
            except OSError:
                pass
            time.sleep(0.05)
        fail("not ready within %d s:\n%s" % (timeout, self.log_text()))

    def headers(self, extra=None):
        h = {"Content-Type": "application/json"}
        if self.key:
            h["Authorization"] = "Bearer " + self.key
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, headers=None, timeout=60, auth=True):
        """(status, headers dict, body bytes) of one request on a new connection."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = self.headers(headers) if auth else dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def post(self, path, obj, timeout=60):
        st, _, body = self.request("POST", path, obj, timeout=timeout)
        try:
            return st, json.loads(body)
        except ValueError:
            fail("POST %s: %d, body is not JSON: %r" % (path, st, body[:500]))

    def metrics(self):
        st, _, body = self.request("GET", "/metrics", timeout=10)
        check(st == 200, "GET /metrics: %d" % st)
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def curl(self, *a, timeout=60):
        cmd = ["curl", "-sS", "--max-time", str(timeout)]
        if self.key:
            cmd += ["-H", "Authorization: Bearer " + self.key]
        cmd += list(a)
        r = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signal the server; require exit status 0 and no sanitizer report."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("stream-server did not exit within %d s of signal %d:\n%s" % (timeout, sig, self.log_text()))
        log = self.log_text()
        self.log.close()
        check("Sanitizer" not in log and "runtime error" not in log, "sanitizer report:\n" + log)
        check(rc == 0, "stream-server exit status %d after signal %d:\n%s" % (rc, sig, log))
        return log

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def sse_events(raw):
    """Data payloads and comments of an event stream (text)."""
    data, comments = [], []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                data.append(line[6:])
            elif line.startswith(":"):
                comments.append(line)
    return data, comments


def parse_stream(raw, what):
    """Chunks (JSON objects) of a finished stream; require it to end with [DONE]."""
    data, _ = sse_events(raw)
    check(data and data[-1] == "[DONE]", "%s: the stream does not end with data: [DONE]: %r" % (what, raw[-300:]))
    chunks = []
    for d in data[:-1]:
        try:
            chunks.append(json.loads(d))
        except ValueError:
            fail("%s: a data line is not JSON: %r" % (what, d))
    return chunks


def stream_request(port, path, obj, key=None, timeout=60):
    """Open a streaming request on a raw socket; returns (sock, file). The caller reads."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    body = json.dumps(obj).encode()
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        path, len(body))
    if key:
        head += "Authorization: Bearer %s\r\n" % key
    s.sendall(head.encode() + b"\r\n" + body)
    return s
