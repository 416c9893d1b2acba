"""Shared test helpers (``from testkit import ...``): tiny synthetic movies, socket receive loops."""

import time

import numpy as np


def disks_movie(n_frames=20, size=64, n_disks=4, radius=5, step=1.0, seed=0, dtype=np.uint16):
    """Dark disks moving right on a bright noisy background; returns (frames, true centres)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    starts = np.stack([rng.uniform(radius + 2, size - radius - 2 - n_frames * step, n_disks),
                       np.linspace(radius + 4, size - radius - 4, n_disks)], axis=1)
    frames, centres = [], []
    for t in range(n_frames):
        img = np.full((size, size), 1000.0)
        c = starts + [t * step, 0.0]
        for x, y in c:
            img[(xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2] = 400.0
        frames.append(rng.poisson(img).astype(dtype))
        centres.append(c)
    return np.stack(frames), np.stack(centres)


def receive_all(source, n, timeout_s=5.0):
    """Up to ``n`` events from a frame source, waiting at most ``timeout_s`` (never hangs)."""
    events, deadline = [], time.monotonic() + timeout_s
    while len(events) < n and time.monotonic() < deadline:
        ev = source.receive(timeout_ms=50)
        if ev is not None:
            events.append(ev)
    return events


def layered_recording(path, n_frames=30, size=96, seed=0):
    """A two-layer recording like a bilayer model's: three particles per layer diffusing,
    layer B's growing, particle rows with ``layer`` 1/2 and ``/data/layer_labels`` (N, 2, H, W).

    Returns (path, particles DataFrame)."""
    import pandas as pd

    from temstream.record import write_movie

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    pos = rng.uniform(20, size - 20, (6, 2))
    frames = np.zeros((n_frames, size, size), np.uint16)
    labels = np.zeros((n_frames, size, size), np.uint32)
    planes = np.zeros((n_frames, 2, size, size), np.uint32)
    rows = []
    for t in range(n_frames):
        pos += rng.normal(0, 0.7, pos.shape)
        img = np.full((size, size), 1000.0)
        for k, (x, y) in enumerate(pos):
            layer = 1 + k // 3
            r = 5.0 + (0.1 * t if layer == 2 else 0.0)
            disk = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
            img[disk] -= 300 * layer
            label = k % 3 + 1
            planes[t, layer - 1][disk] = label
            labels[t][disk] = k + 1
            rows.append(dict(frame=t, particle=k, label=label, x=x, y=y, area=float(disk.sum()),
                             angle=0.01 * t * (k + 1), layer=layer, score=0.9))
        frames[t] = rng.poisson(img)
    df = pd.DataFrame(rows)
    write_movie(path, frames, labels, df, pixel_size_nm=0.5, frame_time_s=0.05,
                attrs={"model": "bilayer"}, extra={"layer_labels": planes})
    return path, df


_BLANK: dict = {}


def _blank_dashboard(size):
    """A snapshot of the dashboard that never received a frame (made once per session)."""
    if size not in _BLANK:
        import tempfile
        from pathlib import Path

        from PIL import Image

        from temstream.cli._pipeline import build_runner
        from temstream.config import load_config
        from temstream.gui.app import ensure_app, run_with_dashboard
        from temstream.stream.sources import MemorySource

        ensure_app()
        config = load_config(None, ())
        with tempfile.TemporaryDirectory() as tmp:
            shot = Path(tmp) / "blank.png"
            run_with_dashboard(build_runner(config, MemorySource([])), config=config,
                               snapshot=shot)
            blank = Image.open(shot).convert("RGB")
            _BLANK[size] = np.asarray(blank.resize(size)).astype(np.int16)
    return _BLANK[size]


def assert_shows_a_picture(png, min_share=0.04):
    """A snapshot of the dashboard shows what it was fed, not a blank window: at least
    ``min_share`` of its pixels differ from a dashboard that never received a frame (a blank
    one with other text: ~2 %; a results feed of three small particles with its plots: ~5 %;
    a run with frames: ~30 %)."""
    from PIL import Image

    shot = Image.open(png).convert("RGB")
    blank = _blank_dashboard(shot.size)
    diff = np.abs(np.asarray(shot).astype(np.int16) - blank).sum(axis=-1) > 30
    assert diff.mean() >= min_share, f"{png}: only {diff.mean():.1%} differs from a blank " \
                                     "dashboard"


#: grey levels of the two-layer test movies: background, layer A, layer B, both
MOIRE_LEVELS = (1000, 700, 800, 500)


def moire_movie(n_frames=4, size=96, a=16.0, twist_deg=9.0, r_a=5.0, r_b=3.5, vibration=0.3,
                seed=0):
    """Two twisted hexagonal layers of disks without noise; each pixel's grey level says
    which layers cover it (:data:`MOIRE_LEVELS`), so :class:`LayerLevelsSegmenter` reads the
    truth back as a two-layer model would see it. Returns (frames (N, H, W) uint16,
    layer_labels (N, 2, H, W) int32, centres: list per frame of [(x, y) of A], [(x, y) of B])."""
    from temstream.sim.dynamics import hex_sites

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    th = rng.uniform(0, np.pi / 3)
    sites = [hex_sites((size, size), a, th, rng.uniform(0, a, 2), 0.0),
             hex_sites((size, size), a, th + np.radians(twist_deg), rng.uniform(0, a, 2), 0.0)]
    frames = np.zeros((n_frames, size, size), np.uint16)
    planes = np.zeros((n_frames, 2, size, size), np.int32)
    centres = []
    for t in range(n_frames):
        cs = []
        for k, (s, r) in enumerate(zip(sites, (r_a, r_b))):
            pos = s + rng.normal(0, vibration, s.shape)
            cs.append(pos)
            for i, (x, y) in enumerate(pos):
                planes[t, k][(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = i + 1 + 1000 * k
        code = (planes[t, 0] > 0) + 2 * (planes[t, 1] > 0)
        frames[t] = np.asarray(MOIRE_LEVELS, np.uint16)[code]
        centres.append(cs)
    return frames, planes, centres


class LayerLevelsSegmenter:
    """A stand-in two-layer model for :func:`moire_movie` frames: each layer's presence from
    the grey level, its centre map from the distance to each disk's edge (disks of one layer
    never touch there)."""

    name = "levels"
    classes = ("background", "layer_a", "layer_b", "centre_a", "centre_b")
    threshold = 0.5
    calibrated = True

    def __init__(self, swap_calls=(), swap_region=None):
        self.swap_calls = set(swap_calls)  # calls (0, 1, ...) that name the layers the other way
        self.swap_region = swap_region     # (slice, slice) where the layers are swapped
        self.calls = 0

    def __call__(self, frame):
        from scipy import ndimage

        f = np.asarray(frame)
        planes = np.stack([ndimage.label(np.isin(f, MOIRE_LEVELS[1::2]))[0],
                           ndimage.label(np.isin(f, MOIRE_LEVELS[2:]))[0]])
        p = layer_probabilities(planes)
        if self.calls in self.swap_calls:
            p = p[[0, 2, 1, 4, 3]]
        if self.swap_region is not None:
            region = (slice(None),) + tuple(self.swap_region)
            p[region] = p[[0, 2, 1, 4, 3]][region]
        self.calls += 1
        return p

    def predict_batch(self, frames):
        return np.stack([self(f) for f in frames])


def layer_probabilities(planes):
    """What a perfect two-layer model says of per-layer instance labels (L, H, W): presence
    0.97 / 0.02, centre maps from each particle's distance to its edge (particles of one layer
    must not touch), background = prod(1 - presence)."""
    from scipy import ndimage

    pres, cen = [], []
    for lab in np.asarray(planes):
        m = lab > 0
        ids, inv = np.unique(lab, return_inverse=True)
        inv = inv.reshape(lab.shape)
        dt = ndimage.distance_transform_edt(m)
        peak = np.maximum(np.asarray(ndimage.maximum(dt, inv, np.arange(len(ids))), float), 1e-6)
        pres.append(np.where(m, 0.97, 0.02))
        cen.append(np.where(m, dt / peak[inv], 0.0))
    bg = np.prod([1 - p for p in pres], axis=0)
    return np.stack([bg, *pres, *cen]).astype(np.float32)
