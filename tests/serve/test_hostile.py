#!/usr/bin/env python3
"""Hostile requests get the right status codes and OpenAI-shaped errors, and the server
stays up: missing or wrong API keys (401; /health needs none), unknown endpoints
(404), wrong methods (405), malformed JSON, wrong types and huge numbers (400), bodies
over --max-body (413: a 20 MB body with a length and chunked), broken HTTP. Then a
normal request still works, no sequence is left, and SIGTERM exits 0."""
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, args, check, model  # noqa: E402

KEY = "s3cret-key"


def main():
    server_exe, _, mkmodel = args()
    path, _ = model(mkmodel)
    srv = Server(server_exe, path, ["-c", "256", "--parallel", "2"], key=KEY)
    try:
        srv.wait_ready()

        def req(method, p, body=None, headers=None, auth=True, timeout=30):
            return srv.request(method, p, body, headers=headers, auth=auth, timeout=timeout)

        def expect(want, method, p, body=None, headers=None, auth=True, what=None):
            st, h, b = req(method, p, body, headers, auth)
            what = what or "%s %s %r" % (method, p, body if not isinstance(body, (bytes, str)) or len(body) < 200
                                          else "<%d bytes>" % len(body))
            check(st == want, "%s: status %d, expected %d: %r" % (what, st, want, b[:300]))
            if st >= 400 and p != "/health":
                try:
                    e = json.loads(b)["error"]
                except (ValueError, KeyError, TypeError):
                    check(False, "%s: not an OpenAI error body: %r" % (what, b[:300]))
                check(isinstance(e.get("message"), str) and e["message"] and isinstance(e.get("type"), str)
                      and "code" in e, "%s: error fields: %r" % (what, e))
            return h, b

        # authentication
        expect(200, "GET", "/health", auth=False)
        expect(401, "GET", "/v1/models", auth=False)
        expect(401, "GET", "/metrics", auth=False)
        expect(401, "POST", "/v1/completions", {"prompt": "x"}, auth=False)
        expect(401, "GET", "/v1/models", headers={"Authorization": "Bearer wrong"}, auth=False)
        expect(401, "GET", "/v1/models", headers={"Authorization": "Bearer " + KEY + "x"}, auth=False)
        expect(401, "GET", "/v1/models", headers={"Authorization": "Basic " + KEY}, auth=False)
        expect(401, "GET", "/v1/models", headers={"Authorization": "Bearer"}, auth=False)
        h, _ = expect(401, "GET", "/nope", auth=False)
        check(h.get("www-authenticate", "").startswith("Bearer"), "401 without WWW-Authenticate")
        expect(200, "GET", "/v1/models")
        # endpoints and methods
        expect(404, "GET", "/nope")
        expect(404, "POST", "/v1/nothing", {"prompt": "x"})
        expect(404, "GET", "/v1/models/not-this-one")
        expect(404, "GET", "/v1/completions/")
        h, _ = expect(405, "GET", "/v1/completions")
        check(h.get("allow") == "POST", "Allow header: %r" % h)
        expect(405, "DELETE", "/v1/models")
        expect(405, "PUT", "/health", auth=False)
        expect(405, "POST", "/metrics", "x")

        bad = [
            b"", b"{", b"null", b"[]", b'"text"', b"123", b"{\"prompt\": \"x\",}", b"\xff\xfe{}",
            {}, {"prompt": None}, {"prompt": 5}, {"prompt": True}, {"prompt": []}, {"prompt": [1, "a"]},
            {"prompt": [-1]}, {"prompt": [99999999]}, {"prompt": [2 ** 40]}, {"prompt": [[1, 2], [3]]},
            {"prompt": ["a", "b"]}, {"prompt": [1.5]}, {"prompt": {"text": "x"}},
            {"prompt": "x", "max_tokens": "5"}, {"prompt": "x", "max_tokens": -1}, {"prompt": "x", "max_tokens": 0},
            {"prompt": "x", "max_tokens": 1e30}, {"prompt": "x", "max_tokens": 1.5},
            {"prompt": "x", "max_tokens": 2 ** 31}, {"prompt": "x", "max_tokens": -2 ** 63},
            b'{"prompt": "x", "max_tokens": 99999999999999999999999999999}',
            {"prompt": "x", "temperature": "hot"}, {"prompt": "x", "temperature": -1},
            {"prompt": "x", "temperature": 1e308}, b'{"prompt": "x", "temperature": 1e999}',
            {"prompt": "x", "top_p": 2}, {"prompt": "x", "top_p": -0.5}, {"prompt": "x", "top_k": -3},
            {"prompt": "x", "min_p": 7}, {"prompt": "x", "repeat_penalty": 0},
            {"prompt": "x", "seed": "x"}, {"prompt": "x", "seed": 1.5}, {"prompt": "x", "stop": 5},
            {"prompt": "x", "stop": [1]}, {"prompt": "x", "stop": ["s%d" % i for i in range(17)]},
            {"prompt": "x", "stop": "z" * 5000}, {"prompt": "x", "stream": "yes"},
            {"prompt": "x", "stream_options": 1}, {"prompt": "x", "stream_options": {"include_usage": 1}},
            {"prompt": "x", "n": 2}, {"prompt": "x", "n": "1"}, {"prompt": "x", "n": 0}, {"prompt": "x", "best_of": 3},
            {"prompt": "x", "model": 7}, {"prompt": "x", "return_token_ids": "y"},
            {"prompt": list(range(300))},  # longer than -c 256
            {"prompt": "word " * 400},  # longer than -c 256 once tokenized
            b'{"prompt": "x", "junk": ' + b"[" * 100000 + b"]" * 100000 + b"}",
        ]
        for b in bad:
            expect(400, "POST", "/v1/completions", b)
        chat_bad = [
            {}, {"messages": "hi"}, {"messages": []}, {"messages": [1]}, {"messages": [{"role": "user"}]},
            {"messages": [{"content": "x"}]}, {"messages": [{"role": "tool", "content": "x"}]},
            {"messages": [{"role": 5, "content": "x"}]},
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            {"messages": [{"role": "user", "content": 5}]},
            {"messages": [{"role": "user", "content": "x"}], "max_tokens": {}},
            {"messages": [{"role": "user", "content": "x"}], "n": 3},
            {"messages": [{"role": "user", "content": "long " * 400}]},
            {"messages": [{"role": "user", "content": "a\u0000b"}]},
        ]
        for b in chat_bad:
            expect(400, "POST", "/v1/chat/completions", b)

        # fields this server does not use are ignored
        expect(200, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 2, "logit_bias": {"5": 1}, "user": "u",
                                               "frequency_penalty": 0.5, "presence_penalty": 0, "logprobs": None,
                                               "echo": False, "suffix": None, "n": 1, "top_p": None})
        expect(200, "POST", "/v1/chat/completions", {"messages": [{"role": "developer", "content": "x"},
                                                                  {"role": "user", "content": "y"},
                                                                  {"role": "assistant", "content": None},
                                                                  {"role": "user", "content": "z"}],
                                                     "max_tokens": 2, "tools": [], "response_format": {}})

        # bodies over --max-body (8 MiB): with a length (answered before it is sent),
        # chunked (read and dropped), and a 9 MiB one
        big = os.path.join(srv.dir, "big.json")
        with open(big, "wb") as f:
            f.write(b'{"prompt": "' + b"a" * (20 << 20) + b'"}')
        for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
            rc, out, err = srv.curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
                                    *extra, "--data-binary", "@" + big, srv.url("/v1/completions"))
            check(out == "413", "20 MB body %s: curl %d, status %r: %s" % (extra, rc, out, err))
        with open(big, "wb") as f:
            f.write(b'{"prompt": "' + b"a" * (9 << 20) + b'"}')
        rc, out, err = srv.curl("-w", "\n%{http_code}", "-H", "Content-Type: application/json",
                                "--data-binary", "@" + big, srv.url("/v1/completions"))
        check(out.endswith("\n413") and '"request_too_large"' in out, "9 MiB body: %r %s" % (out[-300:], err))
        # a lying Content-Length, raw
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                  b"\r\nContent-Length: 1099511627776\r\n\r\n{")
        resp = s.recv(4096)
        s.close()
        check(resp.startswith(b"HTTP/1.1 413"), "1 TB Content-Length: %r" % resp[:100])

        # broken HTTP: garbage, an endless header, a request cut short, a body cut short
        for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /health HTTP/1.1\r\nX: " + b"y" * 200000,
                    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\"",
                    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                    b"\x00\x01\x02\x03" * 1000):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass
            s.close()

        # many connections opened and dropped at once
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(50)]
        for s in socks:
            s.close()

        # still up and serving
        expect(200, "GET", "/health", auth=False)
        st, r = srv.post("/v1/completions", {"prompt": "Hello", "max_tokens": 3})
        check(st == 200 and r["choices"][0]["finish_reason"] in ("stop", "length"), "after the corpus: %r" % r)
        deadline = time.time() + 20
        while srv.metrics()["streaminfer_active_sequences"] != 0 and time.time() < deadline:
            time.sleep(0.05)
        met = srv.metrics()
        check(met["streaminfer_active_sequences"] == 0 and met["streaminfer_queued_requests"] == 0,
              "sequences left: %r" % met)
        check(met['streaminfer_http_responses_total{code="400"}'] >= len(bad) + len(chat_bad), "400 counter")
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise
    srv.stop()

    # the key from the environment
    srv = Server(server_exe, path, ["-c", "256"], env={"STREAMINFER_API_KEY": "envkey"})
    try:
        srv.wait_ready()
        st, _, _ = srv.request("GET", "/v1/models", auth=False)
        check(st == 401, "STREAMINFER_API_KEY ignored: %d" % st)
        st, _, _ = srv.request("GET", "/v1/models", headers={"Authorization": "Bearer envkey"}, auth=False)
        check(st == 200, "STREAMINFER_API_KEY not accepted: %d" % st)
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise
    srv.stop(signal.SIGINT)
    print("ok: %d bad completions, %d bad chats" % (len(bad), len(chat_bad)))


if __name__ == "__main__":
    main()
