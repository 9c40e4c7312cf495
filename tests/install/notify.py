#!/usr/bin/env python3
"""stream-server's readiness for systemd (Type=notify): with NOTIFY_SOCKET set it sends
READY=1 once the model is open (GET /health then says "ok") and STOPPING=1 at SIGTERM;
without the variable it runs as before.

    notify.py STREAM_SERVER MKMODEL"""
import os, signal, socket, subprocess, sys, tempfile, time, urllib.request

server, mkmodel = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
model = os.path.join(tmp, "m.gguf")
subprocess.run([mkmodel, "-o", model], check=True, capture_output=True)


def run(notify):
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    sock = None
    if notify:
        path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(30)
        env["NOTIFY_SOCKET"] = path
    port_file = os.path.join(tmp, "port%d" % notify)
    p = subprocess.Popen([server, "-m", model, "--port", "0", "--port-file", port_file, "-q"], env=env)
    try:
        msgs = []
        if sock:
            msgs.append(sock.recv(256).decode())
            assert msgs == ["READY=1"], msgs
            port = open(port_file).read().strip()
            health = urllib.request.urlopen("http://127.0.0.1:%s/health" % port, timeout=10).read().decode()
            assert '"ok"' in health, health  # ready means ready: the model is attached
        else:
            for _ in range(300):
                if os.path.exists(port_file) and os.path.getsize(port_file):
                    break
                time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
        if sock:
            msgs.append(sock.recv(256).decode())
            assert msgs[1] == "STOPPING=1", msgs
        assert rc == 0, rc
        print("NOTIFY_SOCKET %s: %s, exit %d" % ("set" if notify else "unset", msgs, rc))
    finally:
        if p.poll() is None:
            p.kill()
        if sock:
            sock.close()


run(True)
run(False)
