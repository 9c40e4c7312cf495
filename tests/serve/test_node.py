#!/usr/bin/env python3
"""The official openai Node client against stream-server (tests/serve/node/test.mjs):
models, completions and chat, whole and streamed, errors. Skips (77, with a message)
where node or the installed openai package is absent (`npm install` in
tests/serve/node installs it; .ci/run does)."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, args, check, model, skip  # noqa: E402


def main():
    server_exe, _, mkmodel = args()
    node = shutil.which("node")
    if not node:
        skip("node is not installed (the openai client test needs Node.js 18 or later)")
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
    if not os.path.exists(os.path.join(here, "node_modules", "openai", "package.json")):
        skip("the openai npm package is not installed: run `npm install` in %s" % here)
    r = subprocess.run([node, "-e", "process.exit(+process.versions.node.split('.')[0] >= 18 ? 0 : 1)"])
    if r.returncode != 0:
        skip("node is older than 18")
    path, _ = model(mkmodel)
    srv = Server(server_exe, path, key="node-test-key")
    try:
        srv.wait_ready()
        env = dict(os.environ, SI_PORT=str(srv.port), SI_KEY="node-test-key", SI_MODEL_NAME=os.path.basename(path))
        r = subprocess.run([node, os.path.join(here, "test.mjs")], cwd=here, env=env, capture_output=True,
                           timeout=180)
        out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        check(r.returncode == 0, "node test.mjs failed (%d):\n%s" % (r.returncode, out))
        print(out.strip())
    except BaseException:
        print(srv.log_text(), file=sys.stderr)
        srv.kill()
        raise
    srv.stop()


if __name__ == "__main__":
    main()
