"""Every long-running command says what it is doing when it starts and stops cleanly on
Ctrl-C (SIGINT) and SIGTERM (issue 22, item 17)."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

TEMSTREAM = [sys.executable, "-m", "temstream"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv, tmp_path, ready):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(TEMSTREAM + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env=env)
    first = proc.stdout.readline()
    lines = [first]
    deadline = time.monotonic() + 180
    while ready not in lines[-1] and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    return proc, lines


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command", ["sim-publish", "run", "demo-gui"])
def test_commands_say_what_they_do_and_stop_on_signals(command, sig, tmp_path):
    if command == "sim-publish":  # nobody receives: the sender must not hang in send()
        argv = ["sim", "dispersed", "--publish", f"tcp://127.0.0.1:{free_port()}", "--fps",
                "50", "--size", "64", "--buffer", "4"]
        ready = "Ctrl-C to stop"
    elif command == "run":
        argv = ["run", "--connect", f"tcp://127.0.0.1:{free_port()}", "--out",
                str(tmp_path / "r.hspy")]
        ready = "listening on"
    else:
        argv = ["demo", "--gui", "--frames", "100000", "--fps", "20", "--size", "64",
                "--model", "classical", "--out", str(tmp_path / "d.hspy")]
        ready = "Ctrl-C to stop"
    proc, lines = _start(argv, tmp_path, ready)
    try:
        assert lines[0].strip(), "the command printed nothing when it started"
        assert ready in lines[-1], lines
        time.sleep(2.0)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130), (proc.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
