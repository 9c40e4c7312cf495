#!/usr/bin/env python3
"""k230-report.py DIR: the issue-5 figures of one bench/k230-bench.sh run, as markdown.

Reads DIR/io-bench.csv (raw bandwidth of the envelope), DIR/stream-infer.json (the
engine's --report-json), DIR/stream-infer-cgroup.txt and DIR/envelope.txt, and prints
each figure next to its target. 1 MB = 10^6 bytes; MiB = 2^20.

Targets (issue 5): generation pass >= 95% of io-bench's raw sequential bandwidth;
TTFT of a 6-token prompt <= 1.05 x one pass (no load phase: open to first weight read
< 1 s); peak RSS <= 128 MiB + KV cache bytes; never OOM-killed; default flags.
"""
import csv
import json
import os
import sys

MIB = 1 << 20


def kv_file(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    out[k] = v
    except OSError:
        pass
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[1]
    env = kv_file(os.path.join(d, "envelope.txt"))
    cg = kv_file(os.path.join(d, "stream-infer-cgroup.txt"))
    rows = []
    try:
        with open(os.path.join(d, "io-bench.csv")) as f:
            rows = list(csv.DictReader(f))
    except OSError:
        pass
    try:
        with open(os.path.join(d, "stream-infer.json")) as f:
            j = json.load(f)
    except (OSError, ValueError) as e:
        print(f"no stream-infer report: {e}")
        j = None

    def best(pred):
        r = [x for x in rows if pred(x)]
        return max(r, key=lambda x: float(x["mb_s"])) if r else None

    raw = best(lambda x: x["test"] == "raw")
    raw_ud = best(lambda x: x["test"] == "raw" and x["backend"] == "io_uring" and x["mode"] == "direct")
    sched = best(lambda x: x["test"] == "sched")
    bw = env.get("bw_mbps", "?")
    mem = env.get("mem_mib", "?")
    print(f"### envelope: {bw} MB/s, {mem} MiB (cgroup {env.get('cgroup', '?')}, device {env.get('device', '?')})\n")

    def desc(r):
        return f"{float(r['mb_s']):.2f} MB/s ({r['backend']} {r['mode']}, chunk {int(r['chunk_bytes']) // 1024} KiB, depth {r['queue_depth']})"

    print("| figure | value | target |")
    print("|---|---|---|")
    if raw:
        print(f"| io-bench raw, best | {desc(raw)} | |")
    if raw_ud:
        print(f"| io-bench raw io_uring O_DIRECT, best | {desc(raw_ud)} | |")
    if sched:
        print(f"| io-bench scheduler alone, best | {desc(sched)} | |")
    ok_all = True
    if j:
        bpp = j["bytes_per_pass"]
        passes = j["passes"]
        raw_mb = float(raw["mb_s"]) if raw else float("nan")
        pass_time_ideal = bpp / 1e6 / raw_mb if raw else float("nan")
        print(f"| bytes per pass | {bpp} ({bpp / 1e6:.1f} MB) | |")
        print(f"| passes / tokens evaluated / generated | {passes} / {j['tokens_evaluated']} / {j['tokens_generated']} | |")
        print(f"| all passes: read MB/s (bytes_read / pass_s) | {j['read_mb_s']:.2f} MB/s over {j['pass_s']:.1f} s | |")
        print(f"| prompt pass: bytes_per_pass / prompt_s | {bpp / 1e6 / j['prompt_s']:.2f} MB/s ({j['prompt_s']:.1f} s) | |")
        if passes > 1 and j["gen_s"] > 0:
            gen_pass_s = j["gen_s"] / (passes - 1)
            gen_mb = bpp / 1e6 / gen_pass_s
            ratio = gen_mb / raw_mb if raw else float("nan")
            ok = ratio >= 0.95
            ok_all &= ok
            print(f"| generation pass: bytes_per_pass / (gen_s / {passes - 1}) | {gen_mb:.2f} MB/s ({gen_pass_s:.1f} s per pass) | |")
            print(f"| **generation pass / io-bench raw best** | **{100 * ratio:.1f}%** | >= 95% {'OK' if ok else 'MISSED'} |")
            one_pass = gen_pass_s
        else:
            one_pass = j["pass_s"] / max(passes, 1)
        ratio_all = j["read_mb_s"] / raw_mb if raw else float("nan")
        print(f"| all passes / io-bench raw best | {100 * ratio_all:.1f}% | |")
        t = j["ttft_s"] / one_pass
        t2 = j["ttft_s"] / pass_time_ideal
        ok = t <= 1.05
        ok_all &= ok
        print(f"| **TTFT / one (generation) pass** | **{t:.3f}** (TTFT {j['ttft_s']:.2f} s, pass {one_pass:.2f} s) | <= 1.05 {'OK' if ok else 'MISSED'} |")
        print(f"| TTFT / (bytes per pass / raw bandwidth) | {t2:.3f} (ideal pass {pass_time_ideal:.2f} s) | |")
        pre = j["ttft_s"] - j["prompt_s"]
        ok = pre < 1.0
        ok_all &= ok
        print(f"| start to first pass (ttft_s - prompt_s; bounds open-to-first-weight-read) | {pre:.3f} s | < 1 s {'OK' if ok else 'MISSED'} |")
        waitp = 100 * j["io_wait_s"] / j["pass_s"] if j["pass_s"] else 0
        print(f"| I/O wait / compute | {j['io_wait_s']:.1f} s / {j['compute_s']:.1f} s ({waitp:.0f}% waiting) | |")
        kv = j["kv_cache_bytes"]
        lim = 128 * MIB + kv
        ok = j["peak_rss_bytes"] <= lim
        ok_all &= ok
        print(f"| **peak RSS** | **{j['peak_rss_bytes'] / MIB:.1f} MiB** (KV {kv / MIB:.1f} MiB, ctx {j['n_ctx']}, weight buffer {j['weight_buffer_bytes'] / MIB:.1f} MiB, budget {j['mem_budget_bytes'] / MIB:.1f} MiB) | <= {lim / MIB:.1f} MiB {'OK' if ok else 'MISSED'} |")
        print(f"| I/O | {j['io_backend']}, {'O_DIRECT' if j['direct_io'] else 'buffered'} | |")
    if cg:
        peak = int(cg.get("cgroup_peak_bytes", "0") or 0)
        print(f"| cgroup peak during stream-infer (page cache included) | {peak / MIB:.1f} MiB of {mem} MiB | |")
        oom = cg.get("oom_kill", "?")
        ok = oom == "0" and cg.get("status") == "0"
        ok_all &= ok
        print(f"| **OOM kills / exit status** | **{oom} / {cg.get('status', '?')}** | 0 / 0 {'OK' if ok else 'MISSED'} |")
    if env:
        print(f"| envelope cgroup at exit: peak (since the reset before stream-infer), OOM kills, device reads of the whole run | {int(env.get('peak_bytes', 0)) / MIB:.1f} MiB, {env.get('oom_kill')}, {int(env.get('device_read_bytes', 0)) / 1e6:.0f} MB in {env.get('elapsed_s')} s | |")
    print(f"\nall targets met: {'yes' if ok_all else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
