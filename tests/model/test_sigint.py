"""Ctrl-C (SIGINT) in the middle of a run of the real stream-infer binary.

The model (mkmodel, seed 1, Q8_0) never produces an end-of-text token, so a greedy
run goes on until the context is full; it is read with 4 KiB chunks and one read in
flight (--chunk 4K --queue-depth 1 --io pread, buffered, nothing pinned: the page cache
serves it, the disk is left alone), so a pass is hundreds
of reads and the process is inside a pass nearly all the time it runs. The signal is
sent once the output shows the run is generating.

  prompt: exit status 130; every token printed before the signal is on stdout, which
          ends with a newline; stderr says "interrupted: N tokens generated" with N the
          ids on stdout, fewer than the run would have made; the report (human and
          --report-json) says interrupted, and whether the pass in flight stopped before
          its next read; the N ids are exactly what an uninterrupted
          run of -n N prints (the partial output is right, not just present);
  batch:  --batch-file with long requests: exit status 130, the message, and an object
          per request submitted: those running "cancelled" with the tokens so far;
  chat:   Ctrl-C ends the answer, not the chat: the turn says "(interrupted)" and
          generated fewer tokens than -n, the next message is answered in full, exit 0.
Every run has a deadline and must exit within 20 s of the signal; no sanitizer report.
usage: test_sigint.py STREAM_INFER MKMODEL prompt|batch|chat
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

SI, MKMODEL, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.environ.get("SI_BUILD_ROOT", ".")
SLOW = ["--chunk", "4K", "--queue-depth", "1", "--io", "pread", "--direct", "off", "--pin", "none", "--temp", "0"]


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def model(extra=()):
    d = os.path.join(ROOT, "test-models")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, "sigint-q8-seed1%s.gguf" % "".join(extra).replace("-", ""))
    if not os.path.exists(out):
        tmp = out + ".%d" % os.getpid()
        r = subprocess.run([MKMODEL, "-o", tmp, "--type", "Q8_0", "--seed", "1"] + list(extra), capture_output=True,
                           timeout=120)
        check(r.returncode == 0, "mkmodel failed: %r" % r.stderr)
        os.replace(tmp, out)
    return out


def run_until(args, ready, stdin=None, deadline=60):
    """Start stream-infer, read stdout until ready(stdout so far) holds, send SIGINT,
    read the rest. Returns (status, stdout, stderr, stdout seen before the signal)."""
    p = subprocess.Popen([SI] + args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if stdin is not None:
        p.stdin.write(stdin.encode())
        p.stdin.close()
    out, err, before = b"", b"", None
    t_end, t_sig = time.time() + deadline, None
    fds = {p.stdout.fileno(): "out", p.stderr.fileno(): "err"}
    while fds:
        left = (t_sig + 20 if t_sig else t_end) - time.time()
        if left <= 0:
            p.kill()
            p.wait()
            fail("%s: no exit within %s (stdout %r, stderr %r)" % (
                args, "20 s of SIGINT" if t_sig else "%d s" % deadline, out[-200:], err[-2000:]))
        r, _, _ = select.select(list(fds), [], [], min(left, 0.5))
        for fd in r:
            d = os.read(fd, 65536)
            if not d:
                del fds[fd]
            elif fds[fd] == "out":
                out += d
            else:
                err += d
        if t_sig is None and ready(out):
            check(p.poll() is None, "%s: the run ended before the signal (status %s): %r" % (args, p.returncode, err))
            before = out
            p.send_signal(signal.SIGINT)
            t_sig = time.time()
    rc = p.wait(timeout=20)
    check(before is not None, "%s: never ready for the signal; status %d, stdout %r, stderr %r" % (
        args, rc, out[-300:], err[-2000:]))
    text = err.decode(errors="replace")
    check("Sanitizer" not in text and "runtime error" not in text, "sanitizer report:\n" + text)
    return rc, out, text, before


def test_prompt(m, tmp):
    # ids in, ids out: a 300-token vocabulary and no tokenizer, so no end-of-text id and
    # a classifier that costs nothing: all but microseconds of a token's time is its
    # pass's reads, and the signal lands inside a pass
    m = model(["--vocab-size", "300"])
    rj = os.path.join(tmp, "report.json")
    args = ["-m", m, "--prompt-ids", "100 1 2 3", "-n", "-1", "--print-ids", "--draft", "none",
            "--report-json", rj] + SLOW
    rc, out, err, before = run_until(args, lambda o: len(o.split()) >= 6)
    check(rc == 130, "exit status %d, not 130 (128 + SIGINT): %s" % (rc, err))
    check(out.startswith(before), "stdout lost what was printed before the signal")
    check(out.endswith(b"\n"), "stdout does not end with a newline: %r" % out[-50:])
    ids = out.split()
    mm = re.search(r"stream-infer: interrupted: (\d+) tokens generated", err)
    check(mm, "no 'interrupted: N tokens generated' message:\n" + err)
    n = int(mm.group(1))
    check(n == len(ids), "the message says %d tokens, stdout has %d" % (n, len(ids)))
    with open(rj) as f:
        rep = json.load(f)
    n_ctx = rep["n_ctx"] if "n_ctx" in rep else 2048
    check(n < n_ctx - 4, "%d tokens: the run was not cut short (context %d)" % (n, n_ctx))
    check(rep["interrupted"] is True, "--report-json: interrupted is %r" % rep["interrupted"])
    check(re.search(r"^interrupted\s+: yes", err, re.M), "the human report does not say interrupted:\n" + err)
    # the pass in flight stopped before its next read (passes_stopped 1), or the signal
    # came after the pass's last read (the reads ahead for the next pass are done in its
    # last matrix product), and the run ended with that pass; the report says which
    # (tests/gen/test_engine_stop.c stops passes at every point, deterministically)
    stopped = rep["passes_stopped"]
    check(stopped in (0, 1), "--report-json: passes_stopped is %r" % stopped)
    where = "stopped before its next read" if stopped else "between passes"
    check(where in err, "passes_stopped %d, but the report does not say %r:\n%s" % (stopped, where, err))
    # the partial output is the run's own: an uninterrupted -n N gives the same ids
    r = subprocess.run([SI, "-m", m, "--prompt-ids", "100 1 2 3", "-n", str(n), "--print-ids", "-q", "--draft",
                        "none", "--pin", "none", "--temp", "0"], capture_output=True, timeout=120)
    check(r.returncode == 0, "-n %d: status %d: %r" % (n, r.returncode, r.stderr))
    check(r.stdout.split() == ids, "the interrupted output differs from a -n %d run" % n)
    print("prompt: interrupted after %d tokens (%d seen at the signal), %s; exit 130" % (
        n, len(before.split()), where))


def test_batch(m, tmp):
    bf = os.path.join(tmp, "batch.jsonl")
    with open(bf, "w") as f:
        f.write(json.dumps({"id": "short", "prompt_ids": [500, 1, 2], "n_predict": 3}) + "\n")
        for i in range(6):
            f.write(json.dumps({"id": "long%d" % i, "prompt": "Once upon a time", "n_predict": -1}) + "\n")
    rj = os.path.join(tmp, "report.json")
    args = ["-m", m, "--batch-file", bf, "--parallel", "2", "--ordered", "--report-json", rj] + SLOW
    # --ordered: the short request's object comes first; once it is out, the long ones run
    rc, out, err, before = run_until(args, lambda o: b'"short"' in o and o.endswith(b"\n"))
    check(rc == 130, "exit status %d, not 130: %s" % (rc, err))
    check(out.startswith(before), "stdout lost what was printed before the signal")
    check("stream-infer: interrupted:" in err, "no interrupted message:\n" + err)
    objs = [json.loads(line) for line in out.decode().splitlines()]
    ids = [o["id"] for o in objs]
    check(ids[0] == "short" and objs[0]["finish_reason"] == "length", "first object: %r" % objs[0])
    check(len(set(ids)) == len(ids), "an object twice: %r" % ids)
    with open(rj) as f:
        rep = json.load(f)
    check(rep["interrupted"] is True and rep["requests"] == len(objs),
          "report: interrupted %r, requests %r, objects %d" % (rep["interrupted"], rep["requests"], len(objs)))
    cut = [o for o in objs[1:] if o["finish_reason"] == "cancelled"]
    check(all(o["finish_reason"] == "cancelled" for o in objs[1:]), "long requests not all cancelled: %r" % [
        (o["id"], o["finish_reason"]) for o in objs])
    check(any(len(o["ids"]) > 0 for o in cut), "no cancelled request has its tokens so far: %r" % cut)
    check(all(len(o["ids"]) < 2000 for o in cut), "a long request ran to the end of the context")
    print("batch: %d objects, cancelled with %r tokens; exit 130" % (len(objs), [len(o["ids"]) for o in cut]))


def test_chat(m, tmp):
    args = ["-m", m, "--chat", "-n", "60", "--draft", "none"] + SLOW
    # the first answer is interrupted once it shows; the second message is answered whole
    rc, out, err, before = run_until(args, lambda o: len(o) >= 8, stdin="Hello there\nTell me more\n")
    check(rc == 0, "chat: exit status %d (Ctrl-C ends an answer, not the chat): %s" % (rc, err))
    turns = re.findall(r"\[turn (\d+): \d+ new tokens evaluated, (\d+) generated([^;]*);", err)
    check(len(turns) == 2, "two turns expected:\n" + err)
    check("(interrupted)" in turns[0][2] and int(turns[0][1]) < 60, "turn 1 was not interrupted: %r" % (turns[0],))
    check("interrupted" not in turns[1][2] and int(turns[1][1]) == 60, "turn 2 not answered in full: %r" % (
        turns[1],))
    check(out.startswith(before), "stdout lost what was printed before the signal")
    check("stream-infer: interrupted:" not in err, "the chat reported the whole run interrupted")
    print("chat: turn 1 interrupted after %s tokens, turn 2 made %s; exit 0" % (turns[0][1], turns[1][1]))


def main():
    if os.environ.get("SI_EMULATED"):
        print("SKIP: signal timing test runs natively only", file=sys.stderr)
        sys.exit(77)
    m = model()
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        {"prompt": test_prompt, "batch": test_batch, "chat": test_chat}[MODE](m, tmp)


main()
