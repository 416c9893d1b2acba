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


def publish(endpoint_box: list, stop: threading.Event, fps: float, size: int = 256) -> None:
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
        pub.send(img, frame=i, timestamp=time.time())
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
    out["last_ts"] = float(f["data/frames/dim1"][nf - 1]) if nf else None
    try:
        rows = info[()]
        out["info_rows"] = len(rows)
    except Exception as exc:
        rows, out["info_error"] = [], str(exc)
    processed = [int(r["frame"]) for r in rows if r["status"] == b"processed"]
    out["processed_rows"] = len(processed)
    out["claimed_missing"] = sorted(set(i % 65536 for i in processed) - held)[:10]
    out["processed_beyond_labels"] = max(0, len(processed) - nl)
    t0 = f.attrs.get("first_timestamp")
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
    sender = threading.Thread(target=publish, args=(box, stop, fps), daemon=True)
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
    time.sleep(rng.uniform(0.2, 5.0))
    t_kill = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    sender.join(5)
    # the recording's time axis is relative to its first frame: read that frame's send time
    result = check_file(path, t_kill)
    result["trial"] = k
    if result.get("last_ts") is not None:
        first = _first_timestamp(path)
        result["loss_s"] = round(t_kill - (first + result["last_ts"]), 3) if first else None
    return result


def _first_timestamp(path: Path) -> float | None:
    """The detector timestamp of the first frame (frames_info row of the first data frame, or
    the first frame's index and the sender's pace)."""
    import h5py

    with h5py.File(path, "r") as f:
        try:
            info = f["frames_info"][()]
        except Exception:  # noqa: BLE001
            return None
        if not len(info):
            return None
        first = int(f["data/frames/data"][0, 0, 0])
        rows = info[(info["frame"] % 65536 == first) & (info["status"] == b"processed")]
        return float(rows["timestamp"][0]) if len(rows) else None


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
