#!/usr/bin/env python3
"""stream-server's API with curl: /health, /v1/models, /metrics; completions and chat,
whole and streamed (one chunk per token, [DONE], usage), the two agree at temperature
0; stop strings (never streamed, finish_reason "stop"); max_tokens defaults; n != 1;
seeded sampling repeats; prompts as token ids; SIGTERM -> exit 0. While the model
loads (a FIFO that blocks the load) /health and the API answer 503."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, args, check, fail, model, parse_stream  # noqa: E402


def curl_json(srv, path, obj):
    rc, out, err = srv.curl("-H", "Content-Type: application/json", "-d", json.dumps(obj), srv.url(path))
    check(rc == 0, "curl %s: exit %d: %s" % (path, rc, err))
    try:
        return json.loads(out)
    except ValueError:
        fail("curl %s: not JSON: %r" % (path, out[:500]))


def curl_stream(srv, path, obj):
    rc, out, err = srv.curl("-N", "-H", "Content-Type: application/json", "-d", json.dumps(obj), srv.url(path))
    check(rc == 0, "curl -N %s: exit %d: %s" % (path, rc, err))
    return parse_stream(out, path)


def main():
    server_exe, _, mkmodel = args()
    path, _ = model(mkmodel)
    srv = Server(server_exe, path)
    try:
        srv.wait_ready()
        name = os.path.basename(path)

        st, models = srv.post("/v1/models", {})  # wrong method
        check(st == 405, "POST /v1/models: %d" % st)
        rc, out, err = srv.curl(srv.url("/v1/models"))
        m = json.loads(out)
        check(m["object"] == "list" and [d["id"] for d in m["data"]] == [name], "/v1/models: %r" % m)
        st, _, body = srv.request("GET", "/v1/models/" + name)
        check(st == 200 and json.loads(body)["id"] == name, "/v1/models/%s: %d %r" % (name, st, body))

        # completions: whole, then streamed, greedy: the same text
        req = {"model": "anything", "prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}
        whole = curl_json(srv, "/v1/completions", req)
        check(whole["object"] == "text_completion" and whole["model"] == "anything", "envelope: %r" % whole)
        c0 = whole["choices"][0]
        check(c0["finish_reason"] in ("stop", "length") and c0["index"] == 0, "choice: %r" % c0)
        u = whole["usage"]
        check(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and u["prompt_tokens"] > 0,
              "usage: %r" % u)
        check(c0["finish_reason"] == "stop" or u["completion_tokens"] == 24, "24 tokens or a stop: %r" % whole)
        chunks = curl_stream(srv, "/v1/completions", dict(req, stream=True))
        check(all(c["object"] == "text_completion" for c in chunks), "chunk objects")
        text = "".join(c["choices"][0]["text"] for c in chunks)
        check(text == c0["text"], "streamed text %r != whole %r" % (text, c0["text"]))
        check(chunks[-1]["choices"][0]["finish_reason"] == c0["finish_reason"], "stream finish reason")
        check(all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]), "finish only in the last chunk")
        check(len(chunks) - 1 <= u["completion_tokens"], "more chunks than tokens: %d" % len(chunks))
        check(all("usage" not in c for c in chunks), "usage in a stream without include_usage")

        # include_usage: the last chunk before [DONE] has usage and no choices
        chunks = curl_stream(srv, "/v1/completions", dict(req, stream=True, stream_options={"include_usage": True}))
        check(chunks[-1]["choices"] == [] and chunks[-1]["usage"] == u, "usage chunk: %r" % chunks[-1])
        check(all(c["usage"] is None for c in chunks[:-1]), "usage null before the last chunk")

        # default max_tokens 16
        d = curl_json(srv, "/v1/completions", {"prompt": "Once upon a time", "temperature": 0})
        check(d["choices"][0]["finish_reason"] == "stop" or d["usage"]["completion_tokens"] == 16,
              "default max_tokens: %r" % d["usage"])

        # stop strings: cut where the stop string starts, never streamed
        full = curl_json(srv, "/v1/completions", dict(req, max_tokens=48))["choices"][0]["text"]
        cut = None
        for i in range(4, len(full) - 3):
            s = full[i:i + 3]
            if s.strip() and full.find(s) == i:
                cut = (i, s)
                break
        if cut:
            i, s = cut
            r = curl_json(srv, "/v1/completions", dict(req, max_tokens=48, stop=["\u00a7never", s]))
            check(r["choices"][0]["text"] == full[:i] and r["choices"][0]["finish_reason"] == "stop",
                  "stop %r: %r (full %r)" % (s, r["choices"][0], full))
            chunks = curl_stream(srv, "/v1/completions", dict(req, max_tokens=48, stop=s, stream=True))
            st_text = "".join(c["choices"][0]["text"] for c in chunks)
            check(st_text == full[:i] and chunks[-1]["choices"][0]["finish_reason"] == "stop",
                  "streamed stop %r: %r" % (s, st_text))
        else:
            print("note: greedy text too repetitive for a stop-string check: %r" % full, file=sys.stderr)

        # prompt as token ids; a list of one string
        ids = curl_json(srv, "/v1/completions", dict(req, return_token_ids=True))["choices"][0]["token_ids"]
        check(len(ids) == u["completion_tokens"] or whole["choices"][0]["finish_reason"] == "stop", "token_ids")
        one = curl_json(srv, "/v1/completions", dict(req, prompt=["Once upon a time"]))
        check(one["choices"][0]["text"] == c0["text"], "[string] prompt")
        pid = curl_json(srv, "/v1/completions", dict(req, prompt=[1, 2, 3], max_tokens=4))
        check(pid["usage"]["prompt_tokens"] == 3, "id prompt usage: %r" % pid)

        # seeded sampling repeats
        sreq = {"prompt": "The", "max_tokens": 16, "temperature": 1.0, "seed": 1234}
        a = curl_json(srv, "/v1/completions", sreq)["choices"][0]["text"]
        b = curl_json(srv, "/v1/completions", sreq)["choices"][0]["text"]
        check(a == b, "seed 1234 twice: %r != %r" % (a, b))

        # n != 1
        st, e = srv.post("/v1/completions", dict(req, n=2))
        check(st == 400 and "n = 1" in e["error"]["message"] and e["error"]["param"] == "n", "n=2: %d %r" % (st, e))

        # chat: whole and streamed
        creq = {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "Hello there"}],
                "max_tokens": 20, "temperature": 0}
        cw = curl_json(srv, "/v1/chat/completions", creq)
        check(cw["object"] == "chat.completion", "chat object: %r" % cw)
        msg = cw["choices"][0]["message"]
        check(msg["role"] == "assistant" and isinstance(msg["content"], str), "chat message: %r" % msg)
        check(cw["choices"][0]["finish_reason"] in ("stop", "length"), "chat finish: %r" % cw)
        chunks = curl_stream(srv, "/v1/chat/completions", dict(creq, stream=True))
        check(all(c["object"] == "chat.completion.chunk" for c in chunks), "chat chunk objects")
        check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", "first delta has the role")
        stext = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        check(stext == msg["content"], "chat streamed %r != whole %r" % (stext, msg["content"]))
        check(chunks[-1]["choices"][0]["finish_reason"] == cw["choices"][0]["finish_reason"], "chat finish reason")
        # chat without max_tokens: to the end of the turn (or the context)
        cn = curl_json(srv, "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                     "temperature": 0})
        check(cn["choices"][0]["finish_reason"] in ("stop", "length"), "chat without max_tokens: %r" % cn)
        # content as text parts
        cp = curl_json(srv, "/v1/chat/completions", dict(creq, messages=[
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]}]))
        check(cp["choices"][0]["message"]["content"] == msg["content"], "content parts render the same")

        met = srv.metrics()
        for k in ("streaminfer_passes_total", "streaminfer_bytes_read_total", "streaminfer_active_sequences",
                  "streaminfer_queued_requests", "streaminfer_generated_per_pass",
                  "streaminfer_read_throughput_bytes_per_second", 'streaminfer_requests_total{outcome="stop"}',
                  'streaminfer_requests_total{outcome="cancelled"}'):
            check(k in met, "metric %s missing" % k)
        check(met["streaminfer_passes_total"] > 0 and met["streaminfer_bytes_read_total"] > 0, "metrics: %r" % met)
        check(met["streaminfer_active_sequences"] == 0, "active sequences after all requests: %r" % met)
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise
    srv.stop()

    # the port opens before the model loads: /health and the API answer 503 meanwhile
    # (the model here is a FIFO nobody writes to yet; then it proves not to be a model)
    fifo = os.path.join(srv.dir, "loading.gguf")
    os.mkfifo(fifo)
    srv = Server(server_exe, fifo)
    try:
        st, _, body = srv.request("GET", "/health")
        check(st == 503 and json.loads(body) == {"status": "loading"}, "health while loading: %d %r" % (st, body))
        st, e = srv.post("/v1/completions", {"prompt": "x"})
        check(st == 503 and e["error"]["code"] == "model_loading", "completion while loading: %d %r" % (st, e))
        st, _, _ = srv.request("GET", "/metrics")
        check(st == 200, "metrics while loading: %d" % st)
        # (the loader may open the file more than once: keep a writer until it exits)
        w = os.open(fifo, os.O_RDWR)
        try:
            rc = srv.proc.wait(timeout=30)
        finally:
            os.close(w)
        check(rc == 1 and "stream-server: error: " in srv.log_text(), "a bad model: exit %d:\n%s" % (rc, srv.log_text()))
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise
    print("ok")


if __name__ == "__main__":
    main()
