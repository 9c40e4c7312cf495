"""stream-infer's status line on a terminal (tools/progress.c).

  - stdout and stderr on one pseudo-terminal: the line "pass N · layer L/M · ... ·
    K tokens" is drawn, never wider than the terminal, and the screen a small VT
    emulator builds from the byte stream holds exactly the text of a -q run (which
    draws nothing), the report aside: the text was never garbled, no status is left;
  - stderr not a terminal (stdout one): nothing drawn, stderr has no escape bytes;
  - stdout not a terminal (stderr one): the line is rewritten in place with CR, and
    stdout is the plain text;
  - -q on a terminal: nothing drawn.
usage: test_progress.py STREAM_INFER MKMODEL
"""
import fcntl
import os
import re
import struct
import subprocess
import sys
import termios

SI, MKMODEL = sys.argv[1], sys.argv[2]
ROOT = os.environ.get("SI_BUILD_ROOT", ".")
COLS = 50
ROWS = 6
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def run(args, out_tty, err_tty):
    """Run stream-infer; returns (bytes on the terminal, stdout if not a tty, stderr if not a tty)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    p = subprocess.Popen([SI] + args, stdin=subprocess.DEVNULL, stdout=slave if out_tty else subprocess.PIPE,
                         stderr=slave if err_tty else subprocess.PIPE, start_new_session=True)
    os.close(slave)
    tty = b""
    while True:
        try:
            d = os.read(master, 65536)
        except OSError:
            break
        if not d:
            break
        tty += d
    out, err = p.communicate(timeout=120)
    os.close(master)
    check(p.returncode == 0, "%s exited with %d: %r" % (args, p.returncode, err))
    return tty, out, err


def screen(data):
    """The text a VT100 of ROWS x COLS shows after data, lines scrolled off the top
    included (only what stream-infer sends: printable text, CR, LF, ESC D/7/8 and CSI
    A/B/H/K/r; xterm's deferred wrap, saved and restored by ESC 7/8). Returns (all rows,
    the last row)."""
    scr = [[] for _ in range(ROWS)]
    hist = []
    st = {"r": 0, "c": 0, "wrap": False, "top": 0, "bot": ROWS - 1}
    saved = (0, 0, False)

    def lf():
        if st["r"] == st["bot"]:
            gone = scr.pop(st["top"])
            if st["top"] == 0:
                hist.append(gone)
            scr.insert(st["bot"], [])
        elif st["r"] < ROWS - 1:
            st["r"] += 1

    text = data.decode("utf-8", "replace")
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\x1b":
            m = re.match(r"\x1b(\[([0-9;]*)([A-Za-z])|[D78])", text[i:])
            assert m, "unexpected escape %r" % text[i:i + 8]
            i += len(m.group(0))
            seq, args, final = m.group(1), m.group(2), m.group(3)
            if seq == "7":
                saved = (st["r"], st["c"], st["wrap"])
                continue
            if seq == "8":
                st["r"], st["c"], st["wrap"] = saved
                continue
            st["wrap"] = False
            if seq == "D":
                lf()
            elif final == "A":
                st["r"] = max(st["top"] if st["r"] >= st["top"] else 0, st["r"] - 1)
            elif final == "B":
                st["r"] = min(st["bot"] if st["r"] <= st["bot"] else ROWS - 1, st["r"] + 1)
            elif final == "H":
                rc = [int(x) for x in args.split(";")] if args else [1, 1]
                st["r"], st["c"] = rc[0] - 1, rc[1] - 1
            elif final == "K":
                del scr[st["r"]][st["c"]:]
            elif final == "r":
                tb = [int(x) for x in args.split(";")] if args else [1, ROWS]
                st["top"], st["bot"], st["r"], st["c"] = tb[0] - 1, tb[1] - 1, 0, 0
            else:
                raise AssertionError("unexpected escape %r" % seq)
            continue
        i += 1
        if ch == "\r":
            st["c"], st["wrap"] = 0, False
        elif ch == "\n":
            st["wrap"] = False
            lf()
        else:
            if st["wrap"]:
                st["c"], st["wrap"] = 0, False
                lf()
            line = scr[st["r"]]
            while len(line) < st["c"]:
                line.append(" ")
            if st["c"] < len(line):
                line[st["c"]] = ch
            else:
                line.append(ch)
            if st["c"] == COLS - 1:
                st["wrap"] = True
            else:
                st["c"] += 1
    rows = ["".join(x).rstrip() for x in hist + scr]
    return rows, rows[-1]


model = os.path.join(ROOT, "test-models", "progress.gguf")
os.makedirs(os.path.dirname(model), exist_ok=True)
subprocess.run([MKMODEL, "-o", model, "--dim", "512", "--layers", "6", "--heads", "8", "--kv-heads", "2",
                "--ff", "1024", "--type", "F32", "--seed", "3"], check=True, stdout=subprocess.DEVNULL)
gen = ["-m", model, "-p", "Once upon a time", "-n", "400", "--temp", "0"]
status = re.compile(r"pass \d+ \u00b7 layer \d+/6( \u00b7 [0-9.]+ MB/s)?( \u00b7 \d+ s left)? \u00b7 \d+ tokens?")

# Both on one terminal.
tty, _, _ = run(gen, True, True)
quiet, _, _ = run(gen + ["-q"], True, True)
check(b"\x1b" not in quiet and "pass 1".encode() not in quiet, "-q drew a status line: %r" % quiet[:200])
drawn = re.findall(r"\x1b7\x1b\[%d;1H\x1b\[K([^\x1b]*)\x1b8" % ROWS, tty.decode("utf-8", "replace"))
shown = [s for s in drawn if s]
check(len(shown) >= 2, "%d status lines drawn" % len(shown))
for s in shown:
    check(status.fullmatch(s) or len(s) == COLS - 1, "status line %r" % s)
    check(len(s) <= COLS - 1, "status line wider than the terminal: %r" % s)
check(any(s.startswith("pass 1 \u00b7 layer") for s in shown), "no 'pass 1 · layer' line")
(scr, last), (ref, _) = screen(tty), screen(quiet)
while ref and not ref[-1]:
    ref.pop()
rep = next((i for i, x in enumerate(scr) if x.startswith("--- stream-infer report")), None)
check(rep is not None, "no report on the screen")
text_rows = scr[:rep] if rep is not None else scr
while text_rows and not text_rows[-1]:
    text_rows.pop()
check(text_rows == ref, "the text on the screen differs from the -q run's:\n%s\n-- vs --\n%s" %
      ("\n".join(text_rows), "\n".join(ref)))
check(not any(status.search(x) for x in scr), "a status line is left on the screen")
check(b"\x1b[r" in tty, "the scrolling region was not given back")
print("one terminal: %d status draws, %d text rows as with -q" % (len(shown), len(ref)))

# stderr not a terminal: nothing drawn.
tty2, _, err2 = run(gen, True, False)
check(b"\x1b" not in err2 and b"pass 1 " not in err2, "stderr to a pipe got a status line: %r" % err2[:300])
check(b"\x1b" not in tty2, "escape bytes on stdout's terminal: %r" % tty2[:300])
check(screen(tty2)[0][:len(ref)] == ref, "stdout text differs with stderr not a terminal")

# stdout not a terminal: the line in place on stderr's terminal; stdout plain.
tty3, out3, _ = run(gen, False, True)
check(b"\x1b" not in out3, "escape bytes in stdout to a pipe")
check(re.search(r"\r\x1b\[Kpass 1 \u00b7 layer", tty3.decode("utf-8", "replace")) is not None,
      "no in-place status line on stderr: %r" % tty3[:300])
check(b"\x1b7" not in tty3, "the reserved-row drawing was used with stdout not a terminal")
print("stderr to a pipe: nothing drawn; stdout to a pipe: %d bytes of text, status in place" % len(out3))

print("%d failures" % failures)
sys.exit(1 if failures else 0)
