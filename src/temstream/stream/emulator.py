"""Detector emulator: stream a simulated movie over ZeroMQ at a fixed frame rate.

Frames are rendered ahead into a buffer (the simulator is slower than fast cameras), then sent on
absolute deadlines ``t0 + i / fps`` so that the rate does not drift; when more frames are asked
for than the buffer holds, the buffer is replayed with increasing frame indices.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np

from temstream.stream.publish import FramePublisher

log = logging.getLogger(__name__)


@dataclass
class EmulatorStats:
    """What an emulator run achieved.

    Attributes
    ----------
    frames_sent : int
    requested_fps, achieved_fps : float
        Achieved = (frames_sent - 1) / (time of last send - time of first send).
    elapsed_s : float
    mean_late_ms, max_late_ms : float
        Lateness of the sends behind their deadlines.
    """

    frames_sent: int
    requested_fps: float
    achieved_fps: float
    elapsed_s: float
    mean_late_ms: float
    max_late_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def render_buffer(scenario: str, *, size: int, seed: int, frames: int, progress=False,
                  **overrides) -> tuple[np.ndarray, float, dict]:
    """Render ``frames`` frames of a scenario: (frames (N, H, W), pixel size nm, params)."""
    from temstream.sim import simulate

    movie = simulate(scenario, frames=frames, size=size, seed=seed, progress=progress,
                     **overrides)
    return movie.frames, movie.pixel_size_nm, movie.params


def _wait_until(deadline: float) -> None:
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        if left > 0.002:
            time.sleep(left - 0.001)


def stream_frames(publisher: FramePublisher, frames: np.ndarray, *, fps: float,
                  count: int | None = None, meta: dict | None = None,
                  frame_meta: dict | None = None, stop=None) -> EmulatorStats:
    """Send ``count`` frames (cycling through ``frames``) at ``fps`` on absolute deadlines.

    Parameters
    ----------
    publisher : FramePublisher
    frames : (K, H, W) array
        Pre-rendered frames.
    fps : float
        Requested rate (frames per second); must be > 0.
    count : int, optional
        Frames to send; None = endless (until ``stop`` is set or Ctrl-C).
    meta : dict
        Series metadata (``start_series``).
    frame_meta : dict
        Extra fields of every frame header (``pixel_size_nm``, ``exposure_s``...).
    stop : threading.Event, optional

    Returns
    -------
    EmulatorStats
    """
    if fps <= 0:
        raise ValueError("fps must be > 0; pass the camera frame rate, e.g. --fps 100")
    period = 1.0 / fps
    while not publisher.writable(100):  # no receiver yet: wait for one, or for stop
        if stop is not None and stop.is_set():
            return EmulatorStats(0, float(fps), float("nan"), 0.0, 0.0, 0.0)
    # announce the frame size: receivers can prepare (warm up) before the first frame
    publisher.start_series({"shape": list(frames.shape[1:]), "dtype": frames.dtype.str,
                            **(meta or {})})
    k = frames.shape[0]
    late = []
    sent = 0
    wall0 = time.time()
    start = time.perf_counter() + 0.01
    t_first = t_last = start
    try:
        i = 0
        while count is None or i < count:
            if stop is not None and stop.is_set():
                break
            deadline = start + i * period
            _wait_until(deadline)
            while not publisher.writable(100):  # no receiver yet, or it is behind
                if stop is not None and stop.is_set():
                    break
            if stop is not None and stop.is_set():
                break
            now = time.perf_counter()
            late.append(now - deadline)
            publisher.send(frames[i % k], frame=i, timestamp=wall0 + 0.01 + i * period,
                           **(frame_meta or {}))
            if i == 0:
                t_first = now
            t_last = now
            sent += 1
            i += 1
    except KeyboardInterrupt:
        log.info("interrupted after %d frames", sent)
    finally:
        if publisher.writable(1000):  # with no receiver, the end message waits for nobody
            publisher.end_series(frames_sent=sent)
    span = t_last - t_first
    achieved = (sent - 1) / span if sent > 1 and span > 0 else float("nan")
    lat = np.asarray(late) * 1e3 if late else np.zeros(1)
    return EmulatorStats(sent, float(fps), float(achieved), time.perf_counter() - start,
                         float(lat.mean()), float(lat.max()))


def emulate(scenario: str, *, endpoint: str = "tcp://127.0.0.1:5555", fps: float = 100.0,
            frames: int | None = None, protocol: str = "native", size: int = 512,
            seed: int = 0, buffer: int = 100, socket: str = "push", stop=None,
            announce=None, **overrides) -> EmulatorStats:
    """Play a simulated camera: render a buffer of frames, then stream them at ``fps``.

    Parameters
    ----------
    scenario : str
        Simulator scenario name.
    endpoint : str
        ZeroMQ endpoint to bind (loopback by default).
    fps : float
        Requested frame rate.
    frames : int, optional
        Frames to send (None: endless).
    protocol : {"native", "dectris-v2", ...}
        Wire protocol (any encoder registered in ``temstream.stream.protocols``).
    buffer : int
        Frames rendered ahead and cycled.
    stop : threading.Event, optional
        Set it to end the stream (after the frame being sent).
    announce : callable, optional
        Called with one line saying where and how the frames go, once they are rendered.
    **overrides
        Simulator parameters.
    """
    n = max(1, min(buffer, frames or buffer))
    imgs, px, params = render_buffer(scenario, size=size, seed=seed, frames=n, **overrides)
    meta = {"detector": "temstream simulator", "scenario": scenario, "seed": seed,
            "shape": list(imgs.shape[1:]), "dtype": imgs.dtype.str, "pixel_size_nm": px,
            "frame_time_s": 1.0 / fps, "exposure_s": params["frame_time_s"],
            "dose_e_per_A2": params["dose_e_per_A2"]}
    with FramePublisher(endpoint, protocol=protocol, socket=socket, bind=True) as pub:
        line = (f"streaming {frames if frames is not None else 'endless'} frames of "
                f"{scenario} on {pub.endpoint} at {fps:g} fps ({protocol}, {socket})")
        log.info("%s", line)
        if announce is not None:
            announce(line)
        return stream_frames(pub, imgs, fps=fps, count=frames, meta=meta,
                             frame_meta={"pixel_size_nm": px,
                                         "exposure_s": params["frame_time_s"]},
                             stop=stop)
