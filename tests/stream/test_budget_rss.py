"""Peak RSS within --mem-budget + the fixed overhead the report names, and no OOM kill
in a memory cgroup sized as the default budget assumes.

  - budgets from the named minimum (the refusal's "(N bytes)") doubling up to 64 MiB, then
    the default (no --mem-budget): stream-infer runs a prompt and 8 tokens; exit 0 and
    the report's peak_rss_bytes <= mem_budget_bytes + overhead_bytes;
  - in a child memory cgroup (v2 memory.max, or v1 memory.limit_in_bytes) of 32 MiB and
    of 48 MiB, made under this process's own, stream-infer with the default budget: the
    report says the budget came from the cgroup limit, the run exits 0, the cgroup saw
    no OOM kill, and peak RSS <= budget + overhead.
Skips (77, with a message) under ASan (its shadow memory is RSS the engine does not
plan) and, for the cgroup part, where no memory cgroup can be made.
usage: test_budget_rss.py MKMODEL STREAM_INFER
"""
import json
import os
import re
import subprocess
import sys

MK, SI = sys.argv[1], sys.argv[2]
ROOT = os.environ.get("SI_BUILD_ROOT", ".")


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(c, msg):
    if not c:
        fail(msg)


def run(args, rj, preexec=None):
    r = subprocess.run([SI] + args + ["--report-json", rj], capture_output=True, timeout=120, preexec_fn=preexec)
    check(r.returncode == 0, "%s: status %d: %s" % (args, r.returncode, r.stderr.decode(errors="replace")[-2000:]))
    with open(rj) as f:
        return json.load(f)


def own_memory_cgroup():
    """(version, directory of this process's memory cgroup) or None."""
    with open("/proc/self/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, ctrl, path in lines:
        if "memory" in ctrl.split(","):
            d = "/sys/fs/cgroup/memory" + path
            if os.path.exists(os.path.join(d, "memory.limit_in_bytes")):
                return 1, d
    for _, ctrl, path in lines:
        if ctrl == "":
            d = "/sys/fs/cgroup" + path
            try:
                with open(os.path.join(d, "cgroup.controllers")) as f:
                    if "memory" in f.read().split():
                        return 2, d
            except OSError:
                pass
    return None


def cgroup_run(m, limit, tmp):
    cg = own_memory_cgroup()
    if not cg:
        return "no memory cgroup found in /proc/self/cgroup"
    ver, parent = cg
    d = os.path.join(parent, "si-budget-%d-%d" % (os.getpid(), limit >> 20))
    try:
        os.mkdir(d)
    except OSError as e:
        return "cannot make a memory cgroup under %s: %s" % (parent, e)
    try:
        try:
            with open(os.path.join(d, "memory.max" if ver == 2 else "memory.limit_in_bytes"), "w") as f:
                f.write(str(limit))
        except OSError as e:
            return "cannot set the cgroup's memory limit: %s" % e
        procs = os.path.join(d, "cgroup.procs")

        def enter():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        rep = run(["-m", m, "--prompt-ids", "1 2 3 4 5 6", "-n", "8", "-q", "--temp", "0"],
                  os.path.join(tmp, "cg.json"), preexec=enter)
        if ver == 2:
            with open(os.path.join(d, "memory.events")) as f:
                ev = dict(line.split() for line in f)
            oom = int(ev.get("oom_kill", 0))
        else:
            with open(os.path.join(d, "memory.oom_control")) as f:
                ev = dict(line.split() for line in f)
            oom = int(ev.get("oom_kill", 0))
        check(oom == 0, "limit %d: %d OOM kills" % (limit, oom))
        b, o, peak = rep["mem_budget_bytes"], rep["overhead_bytes"], rep["peak_rss_bytes"]
        check(b + o < limit, "limit %d: budget %d + overhead %d do not fit under it" % (limit, b, o))
        check(peak <= b + o, "limit %d: peak RSS %d > budget %d + overhead %d" % (limit, peak, b, o))
        print("cgroup v%d limit %d MiB: default budget %d, overhead %d, peak RSS %d; no OOM kill" % (
            ver, limit >> 20, b, o, peak))
        return None
    finally:
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except OSError:
                import time
                time.sleep(0.1)


def main():
    ldd = subprocess.run(["ldd", SI], capture_output=True, text=True).stdout
    if "libasan" in ldd or "libtsan" in ldd:
        print("SKIP: a sanitizer build: its shadow memory is resident memory the plan does not hold", file=sys.stderr)
        sys.exit(77)
    d = os.path.join(ROOT, "test-models")
    os.makedirs(d, exist_ok=True)
    m = os.path.join(d, "budget-rss.gguf")
    if not os.path.exists(m):
        r = subprocess.run([MK, "-o", m + ".tmp", "--type", "Q8_0", "--seed", "5"], capture_output=True, timeout=120)
        check(r.returncode == 0, "mkmodel: %r" % r.stderr)
        os.replace(m + ".tmp", m)
    import tempfile
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        r = subprocess.run([SI, "-m", m, "--mem-budget", "1", "--plan"], capture_output=True, text=True, timeout=60)
        mm = re.search(r"\((\d+) bytes\) would work", r.stderr)
        check(r.returncode == 1 and mm, "no named minimum: %r" % r.stderr)
        b = int(mm.group(1))
        budgets = []
        while b < (64 << 20):
            budgets.append(b)
            b *= 2
        for b in budgets + [None]:
            args = ["-m", m, "--prompt-ids", "1 2 3 4 5 6", "-n", "8", "-q", "--temp", "0"]
            if b:
                args += ["--mem-budget", str(b)]
            rep = run(args, os.path.join(tmp, "r.json"))
            budget, o, peak = rep["mem_budget_bytes"], rep["overhead_bytes"], rep["peak_rss_bytes"]
            check(o > 0, "no overhead in the report")
            print("budget %10d (%s): overhead %d, peak RSS %d (%.0f%% of budget + overhead)" % (
                budget, "given" if b else "default", o, peak, 100.0 * peak / (budget + o)))
            check(peak <= budget + o, "budget %d: peak RSS %d > budget + overhead %d" % (budget, peak, budget + o))
        skipped = []
        for limit in (32 << 20, 48 << 20):
            why = cgroup_run(m, limit, tmp)
            if why:
                skipped.append(why)
        if skipped:
            print("SKIP (cgroup part): %s" % skipped[0], file=sys.stderr)
            sys.exit(77)
    print("ok")


main()
