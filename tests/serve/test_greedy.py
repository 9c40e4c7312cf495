#!/usr/bin/env python3
"""Greedy tokens over HTTP are stream-infer's: for prompts of several lengths (token
ids), `POST /v1/completions` with temperature 0 returns the ids that
`stream-infer --prompt-ids ... --temp 0 --print-ids` prints, one request at a time
and all at once (sharing passes); and streaming gives the same text."""
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, args, check, model, parse_stream  # noqa: E402

N = 24


def main():
    server_exe, infer_exe, mkmodel = args()
    path, fixture = model(mkmodel)
    ids = None
    if fixture:
        with open(os.path.join(os.path.dirname(path), "ref", "prompt.ids")) as f:
            ids = [int(x) for x in f.read().split()]
    if not ids:
        ids = [(i * 37 + 11) % 500 for i in range(89)]
    prompts = [ids[:1], ids[:7], ids[:40], ids]
    want = []
    for p in prompts:
        r = subprocess.run([infer_exe, "-m", path, "--prompt-ids", " ".join(map(str, p)), "-n", str(N), "--temp", "0",
                            "--print-ids", "-q"], capture_output=True, timeout=120)
        check(r.returncode == 0, "stream-infer failed: %s" % r.stderr.decode(errors="replace"))
        want.append([int(x) for x in r.stdout.split()])
        check(0 < len(want[-1]) <= N, "stream-infer printed %r" % r.stdout)

    srv = Server(server_exe, path, ["--parallel", "4"])
    try:
        srv.wait_ready()

        def ask(p):
            st, r = srv.post("/v1/completions", {"prompt": p, "max_tokens": N, "temperature": 0,
                                                 "return_token_ids": True})
            check(st == 200, "completion: %d %r" % (st, r))
            return r

        for p, w in zip(prompts, want):
            got = ask(p)["choices"][0]["token_ids"]
            check(got == w, "alone, %d-token prompt: server %r != stream-infer %r" % (len(p), got, w))

        results = [None] * len(prompts)

        def worker(i):
            results[i] = ask(prompts[i])

        th = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
        for t in th:
            t.start()
        for t in th:
            t.join(120)
        for p, w, r in zip(prompts, want, results):
            check(r is not None, "a concurrent request did not finish")
            got = r["choices"][0]["token_ids"]
            check(got == w, "batched, %d-token prompt: server %r != stream-infer %r" % (len(p), got, w))

        # the streamed text is the whole text
        r = ask(prompts[-1])
        rc, out, err = srv.curl("-N", "-H", "Content-Type: application/json", "-d",
                                json.dumps({"prompt": prompts[-1], "max_tokens": N, "temperature": 0,
                                            "stream": True}), srv.url("/v1/completions"))
        chunks = parse_stream(out, "stream")
        check("".join(c["choices"][0]["text"] for c in chunks) == r["choices"][0]["text"], "streamed text differs")
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise
    srv.stop()
    print("ok: %d prompts, alone and batched, match stream-infer" % len(prompts))


if __name__ == "__main__":
    main()
