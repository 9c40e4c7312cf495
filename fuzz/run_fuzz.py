#!/usr/bin/env python3
"""Run one libFuzzer harness for a fixed time on a fresh corpus (meson test, suite 'fuzz').

run_fuzz.py EXE NAME SECONDS SOURCE_DIR FIXTURES_DIR WORK_DIR [extra libFuzzer args]

The corpus starts from fuzz/corpus/NAME and, where the fixtures are present, seeds
taken from them; new inputs go to WORK_DIR/NAME (kept between runs). A crash, leak or
timeout fails the test; its input is written to WORK_DIR/NAME-artifacts/.
"""
import os, shutil, subprocess, sys

exe, name, seconds, src, fixtures, work = sys.argv[1:7]
extra = sys.argv[7:]
corpus = os.path.join(work, name)
artifacts = os.path.join(work, name + '-artifacts')
os.makedirs(corpus, exist_ok=True)
os.makedirs(artifacts, exist_ok=True)
seeds = os.path.join(src, 'fuzz', 'corpus', name)
for f in os.listdir(seeds):
    shutil.copy(os.path.join(seeds, f), os.path.join(corpus, 'seed-' + f))

def fixture(rel):
    p = os.path.join(fixtures, rel)
    return p if os.path.exists(p) else None

# Seeds from the fixtures (not copied into the repository; taken at run time).
# (The llama2.c fixtures, 0.3 and 1 MB, would slow that harness 50-fold: its seeds are
# tiny checkpoints of both versions in fuzz/corpus/l2c instead.)
max_len = {'gguf': 131072, 'pack': 131072, 'l2c': 8192, 'vocab': 800000}.get(name, 4096)
if name == 'vocab' and fixture('tokenizer/llama-spm-vocab.gguf'):
    shutil.copy(fixture('tokenizer/llama-spm-vocab.gguf'), os.path.join(corpus, 'fixture-llama-spm-vocab.gguf'))
if name in ('tok', 'batch_line', 'chat'):
    SEP = b'\n__ggml_vocab_test__\n'
    for inp in ('tokenizer/llama-bpe.inp', 'tokenizer/llama-spm.inp'):
        p = fixture(inp)
        if not p:
            continue
        for i, case in enumerate(open(p, 'rb').read().split(SEP)[:40]):
            if not case.strip():
                continue
            if name == 'tok':
                data = bytes([i % 8]) + case
            elif name == 'chat':
                data = b'user\0' + case
            else:
                data = case.replace(b'\n', b' ')
            with open(os.path.join(corpus, 'fixture-%s-%d' % (os.path.basename(inp), i)), 'wb') as f:
                f.write(data)

if name in ('gguf', 'vocab', 'pack'):
    dict_file = 'gguf.dict'
elif name in ('batch_line', 'srv_params'):
    dict_file = 'json.dict'
else:
    dict_file = None
args = [exe, corpus, '-max_total_time=' + seconds, '-max_len=%d' % max_len, '-timeout=10', '-rss_limit_mb=2048',
        '-print_final_stats=1', '-artifact_prefix=' + artifacts + '/']
if dict_file:
    args.append('-dict=' + os.path.join(src, 'fuzz', dict_file))
args += extra
env = dict(os.environ, SI_FIXTURES=fixtures)
env.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1:halt_on_error=1')
print(' '.join(args), flush=True)
rc = subprocess.call(args, env=env)
sys.exit(0 if rc == 0 else 1)
