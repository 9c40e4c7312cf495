"""Drafting on every fixture model: greedy ids are identical with --draft none, lookup,
lookahead and auto (with the C908's compute ratio fed in), alone (-p/--prompt-ids) and
batched (--batch-file with a second request beside the first); and on the trained
fixture (tiny-trained Q4_K_M, 200 greedy tokens from its fixture prompt, and its 64
reference steps) --draft auto gives at least 1.5 tokens generated per pass over the 200,
and lookahead alone has guesses accepted. Prints what each mode achieves, by source.

usage: test_draft_fixtures.py STREAM_INFER REPACK [--emulated]
Exit codes follow meson: 0 pass, 77 skip (with a message), anything else fail."""
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
# The K230's compute ratio for the 8B Q2_K model: one token's compute in a pass (2.6 s
# by bench/pass-insn.sh's optimistic cycle model) over the pass's reads at 25 MB/s (120 s).
C908_RATIO = "0.022"
MODES = [["--draft", "none"], ["--draft", "lookup"], ["--draft", "lookahead"],
         ["--draft", "auto", "--compute-ratio", C908_RATIO]]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, what):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        fail(f"{what}: exit {p.returncode}: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stdout


def main():
    if len(sys.argv) < 3:
        fail("usage: test_draft_fixtures.py STREAM_INFER REPACK")
    si, repack = sys.argv[1], sys.argv[2]
    fx = os.environ.get("SI_FIXTURES", "")
    if not fx or not os.path.isdir(fx):
        print(f"SKIP: no fixtures at '{fx}' (../shared/fixtures)", file=sys.stderr)
        sys.exit(SKIP)
    emulated = os.environ.get("SI_EMULATED") or ("qemu-user (a cross build)" if "--emulated" in sys.argv[3:] else None)
    n_gen = 16 if emulated else 64
    tmp = tempfile.mkdtemp(prefix="si-draft-")
    # (model, prompt ids)
    models = []
    micro_prompt = open(f"{fx}/micro-llama3/ref/prompt.ids").read().split()
    trained_prompt = open(f"{fx}/tiny-trained/ref/prompt.ids").read().split()
    for t in ["F32", "Q8_0", "Q4_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"]:
        models.append((f"{fx}/micro-llama3/{t}.gguf", micro_prompt))
    for t in ["F32", "Q8_0", "Q4_K_M", "Q2_K"]:
        models.append((f"{fx}/tiny-trained/{t}.gguf", trained_prompt))
    for name in ["stories260K", "stories260K_q80"]:
        pack = f"{tmp}/{name}.pack"
        run([repack, f"{fx}/llama2c/{name}.bin", pack], f"repack {name}")
        models.append((pack, ["1"]))
    modes = MODES
    if emulated:
        print(f"note: under {emulated} only micro-llama3 Q4_K_M, --draft none and auto, {n_gen} tokens; the "
              f"native run covers all 14 models and every mode", file=sys.stderr)
        models = [models[5]]
        modes = [MODES[0], MODES[-1]]
    for path, prompt in models:
        name = os.path.relpath(path, fx) if path.startswith(fx) else os.path.basename(path)
        ids = {}
        for mode in modes:
            alone = run([si, "-m", path, "--prompt-ids", " ".join(prompt), "-n", str(n_gen), "--temp", "0",
                         "--print-ids", "-q", "--pin", "none"] + mode, f"{name} {' '.join(mode)}").split()
            # batched: the same prompt beside another request
            bf = f"{tmp}/batch.jsonl"
            with open(bf, "w") as f:
                f.write(json.dumps({"id": "a", "prompt_ids": [int(x) for x in prompt], "n_predict": n_gen}) + "\n")
                f.write(json.dumps({"id": "b", "prompt_ids": [int(x) for x in prompt[:3]], "n_predict": 9}) + "\n")
            cmd = [si, "-m", path, "--batch-file", bf, "--parallel", "2", "--temp", "0", "-q", "--pin", "none"] + mode
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if p.returncode != 0 and "no JSON support" in p.stderr:
                # a build without jansson (the riscv64 cross build) has no --batch-file
                print(f"note: {name}: batched runs left out: this build has no --batch-file", file=sys.stderr)
                ids[" ".join(mode)] = alone
                continue
            if p.returncode != 0:
                fail(f"{name} batched {' '.join(mode)}: exit {p.returncode}: {' '.join(cmd)}\n{p.stderr[-2000:]}")
            out = p.stdout
            rows = {r["id"]: r for r in map(json.loads, out.splitlines())}
            batched = [str(x) for x in rows["a"]["ids"]]
            if batched != alone[:len(batched)] or rows["a"]["finish_reason"] not in ("length", "stop"):
                fail(f"{name} {' '.join(mode)}: batched ids differ from alone")
            ids[" ".join(mode)] = alone
        ref = ids["--draft none"]
        for m, got in ids.items():
            if got != ref:
                fail(f"{name}: greedy ids with {m} differ from --draft none:\n{' '.join(got)}\n{' '.join(ref)}")
        print(f"{name}: {len(ref)} greedy ids identical with --draft {', '.join(m[1] for m in modes)}, alone and batched")

    if emulated:
        return 0
    # The trained fixture: 200 greedy tokens from its prompt, and its 64 reference steps.
    path = f"{fx}/tiny-trained/Q4_K_M.gguf"
    for n in (200, 64):
        for mode in MODES:
            rj = f"{tmp}/r.json"
            run([si, "-m", path, "--prompt-ids", " ".join(trained_prompt), "-n", str(n), "--temp", "0",
                 "--print-ids", "-q", "--pin", "none", "--report-json", rj] + mode, f"trained {mode}")
            r = json.load(open(rj))
            lu, la = r["draft_source"]["lookup"], r["draft_source"]["lookahead"]
            print(f"tiny-trained Q4_K_M, {n} tokens, {' '.join(mode):40s}: {r['passes']} passes, "
                  f"{r['generated_per_pass']:.2f} generated per pass, {r['draft_proposed_per_pass']:.2f} guessed "
                  f"and {r['draft_accepted_per_pass']:.2f} accepted per pass; lookup {lu['accepted']} of "
                  f"{lu['proposed']}, lookahead {la['accepted']} of {la['proposed']} "
                  f"(window {la['window'] / r['passes']:.2f} per pass)")
            if lu["accepted"] + la["accepted"] != r["draft_accepted"]:
                fail(f"{' '.join(mode)}: accepted by source {lu['accepted']} + {la['accepted']} != "
                     f"{r['draft_accepted']}")
            if n == 200 and mode[1] == "auto" and r["generated_per_pass"] < 1.5:
                fail(f"--draft auto gives {r['generated_per_pass']:.2f} generated per pass (>= 1.5 wanted)")
            if n == 200 and mode[1] == "lookahead" and (not la["accepted"] or lu["proposed"]):
                fail(f"--draft lookahead: {la['accepted']} lookahead guesses accepted, {lu['proposed']} lookup "
                     "guesses proposed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
