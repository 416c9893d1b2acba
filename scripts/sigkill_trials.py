"""SIGKILL trials: kill a real ``temstream run`` at random times and check the file it leaves.

Each trial streams frames (256 x 256 uint16, the frame index in pixel [0, 0], the send time as
the detector timestamp) into a ``temstream run --out`` process, kills it with SIGKILL at a
random moment, and then, before anything repairs the file, checks that:

- it opens in plain h5py (no temstream import, no hdf5plugin) and every frame it lists reads;
- ``temstream info`` opens it (exit 0; info never writes the file);
- ncempy opens it (when installed);
- ``/frames_info`` never lists a processed frame whose raw frame and labels the data lacks;
- the frames lost to the kill span at most 1 s: kill time minus the detector timestamp of the
  newest frame the data holds (what a user loses, pipeline latency included).

Usage::

    python scripts/sigkill_trials.py --trials 30 --out /tmp/kills [--fps 30]

Prints one line per trial and the distribution of the loss (min / median / max seconds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


def publish(endpoint_box: list, stop: threading.Event, fps: float, sent: list,
            size: int = 256) -> None:
    from temstream.stream.publish import FramePublisher

    pub = FramePublisher("tcp://127.0.0.1:0", sndhwm=1000)
    endpoint_box.append(pub.endpoint)
    rng = np.random.default_rng(0)
    base = rng.integers(900, 1100, (size, size)).astype(np.uint16)
    yy, xx = np.mgrid[:size, :size]
    pub.start_series({"shape": [size, size], "dtype": "<u2", "pixel_size_nm": 0.5,
                       "frame_time_s": 1 / fps})
    i = 0
    t0 = time.time()
    while not stop.is_set():
        img = base.copy()
        for k in range(6):  # a few dark disks that move
            cx, cy = 40 + 35 * k + 0.3 * i % 20, 60 + 25 * k
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < 64] = 300
        img[0, 0] = i % 65536
        sent.append(time.time())
        pub.send(img, frame=i, timestamp=sent[-1])
        i += 1
        delay = t0 + i / fps - time.time()
        if delay > 0:
            time.sleep(delay)
    pub.close(0)


def readable_prefix(ds) -> int:
    n = 0
    for k in range(ds.shape[0]):
        try:
            ds[k]
        except Exception:  # noqa: BLE001
            break
        n += 1
    return n


def check_file(path: Path, t_kill: float) -> dict:
    """Open the file as the kill left it (plain h5py, then temstream info, then ncempy)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    code = r"""
import json, sys, h5py, numpy as np
out = {}
with h5py.File(sys.argv[1], "r") as f:
    frames, labels, info = f["data/frames/data"], f["data/labels/data"], f["frames_info"]
    def prefix(ds):
        n = 0
        for k in range(ds.shape[0]):
            try:
                ds[k]
            except Exception:
                break
            n += 1
        return n
    nf, nl = prefix(frames), prefix(labels)
    out["frames_listed"], out["frames_read"], out["labels_read"] = frames.shape[0], nf, nl
    held = set(int(v) for v in frames[:nf, 0, 0]) if nf else set()
    out["last_index"] = int(frames[nf - 1, 0, 0]) if nf else None
    try:
        rows = info[()]
        out["info_rows"] = len(rows)
    except Exception as exc:
        rows, out["info_error"] = [], str(exc)
    processed = [int(r["frame"]) for r in rows if r["status"] == b"processed"]
    out["processed_rows"] = len(processed)
    out["claimed_missing"] = sorted(set(i % 65536 for i in processed) - held)[:10]
    out["processed_beyond_labels"] = max(0, len(processed) - nl)
print(json.dumps(out))
"""
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        return {"h5py_error": r.stderr.strip().splitlines()[-1:]}
    out = json.loads(r.stdout)
    info = subprocess.run([sys.executable, "-m", "temstream", "info", str(path)],
                          capture_output=True, text=True, timeout=120)
    out["info_rc"] = info.returncode
    try:
        import ncempy.io as nio

        with nio.emd.fileEMD(str(path), readonly=True) as emd:
            out["ncempy_groups"] = len(emd.list_emds)
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001
        out["ncempy_error"] = str(exc)[:200]
    out["untouched"] = hashlib.sha256(path.read_bytes()).hexdigest() == digest
    return out


def trial(k: int, out_dir: Path, fps: float, rng: random.Random, extra: list[str]) -> dict:
    stop = threading.Event()
    box: list = []
    sent: list = []  # send time of each frame index
    sender = threading.Thread(target=publish, args=(box, stop, fps, sent), daemon=True)
    sender.start()
    while not box:
        time.sleep(0.01)
    path = out_dir / f"kill{k:02d}.h5"
    path.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "temstream", "run", "--connect", box[0],
                             "--out", str(path), "--model", "classical", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (path.exists() and path.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    t_file = time.time()  # the writer exists: the run has taken its first frame
    time.sleep(rng.uniform(0.2, 5.0))
    t_kill = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    sender.join(5)
    result = check_file(path, t_kill)
    result["trial"] = k
    if "h5py_error" not in result:
        # loss: what the detector sent between the newest frame the data holds (or, with
        # none, the moment the run took its first frame) and the kill
        last = result.get("last_index")
        since = sent[last] if last is not None and last < len(sent) else t_file
        result["loss_s"] = round(t_kill - since, 3)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/temstream-kills"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("extra", nargs="*", help="further `temstream run` arguments")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    results, failures = [], 0
    for k in range(args.trials):
        r = trial(k, args.out, args.fps, rng, args.extra)
        ok = ("h5py_error" not in r and r.get("info_rc") == 0 and not r.get("claimed_missing")
              and not r.get("processed_beyond_labels") and "ncempy_error" not in r
              and r.get("untouched") and r.get("loss_s") is not None and r["loss_s"] <= 1.0)
        failures += not ok
        results.append(r)
        print(("ok  " if ok else "FAIL"), json.dumps(r), flush=True)
    losses = sorted(r["loss_s"] for r in results if r.get("loss_s") is not None)
    if losses:
        print(f"loss over {len(losses)} trials: min {losses[0]:.3f} s, median "
              f"{np.median(losses):.3f} s, max {losses[-1]:.3f} s")
    print(f"{args.trials - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
