"""``temstream export --layers REC.h5 --out DIR``: a two-layer recording as one movie per layer.

Writes, for each layer L (A, B, ...):

- ``layer_L_labels.tif``   (N, H, W) uint32, the layer's instance labels (``/data/layer_labels``);
- ``layer_L_overlay.tif``  (N, H, W, 3) uint8 RGB, the raw frames with the layer's particles
  filled and outlined in the layer's colour (black frames when the recording has no raw ones);
- ``particles_layer_L.csv`` the layer's rows of ``/particles``;

and ``figure.png``: one frame as input | layer A | layer B.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: RGB of each layer's particles in overlays (the dashboard's colours)
LAYER_COLOURS = ((255, 150, 40), (40, 200, 255), (160, 255, 80), (255, 80, 200))


def layer_name(k: int) -> str:
    """``A``, ``B``, ... for planes 0, 1, ..."""
    return chr(ord("A") + k)


def _display(frame: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(frame, [0.5, 99.5])
    return (np.clip((frame.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0, 1) * 255
            ).astype(np.uint8)


def overlay(frame: np.ndarray | None, labels: np.ndarray, colour, *, alpha: float = 0.35
            ) -> np.ndarray:
    """An RGB (H, W, 3) uint8 image: ``frame`` in grey with ``labels`` filled (``alpha``) and
    outlined in ``colour``."""
    h, w = labels.shape
    grey = np.zeros((h, w), np.uint8) if frame is None else _display(frame)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    inside = labels > 0
    edge = np.zeros_like(inside)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[1:] != labels[:-1]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edge &= inside
    c = np.asarray(colour, np.float32)
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * c
    rgb[edge] = c
    return rgb.astype(np.uint8)


def export_layers(recording: str | Path, out: str | Path, *, frame: int | None = None) -> list:
    """Write the per-layer movies, tables and figure of a two-layer recording into ``out``.

    Parameters
    ----------
    recording : path
        A recording with ``/data/layer_labels`` (made with a two-layer model).
    out : path
        Output folder (created).
    frame : int, optional
        Index (0-based, in the recording) of the figure's frame; default the middle one.

    Returns
    -------
    list of Path
        The files written.
    """
    import tifffile

    from temstream.record import read_particles
    from temstream.record.repair import open_recording

    out = Path(out)
    with open_recording(recording) as f:
        if "layer_labels" not in f["data"]:
            raise ValueError(f"{recording} has no /data/layer_labels: it was not recorded with a "
                             "two-layer model (e.g. --model bilayer)")
        planes = f["data/layer_labels/data"]
        n, L, h, w = planes.shape
        frames = f["data/frames/data"] if "frames" in f["data"] else None
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for k in range(L):
            name = layer_name(k)
            labels = planes[:, k]
            p = out / f"layer_{name}_labels.tif"
            tifffile.imwrite(p, np.ascontiguousarray(labels), photometric="minisblack")
            written.append(p)
            p = out / f"layer_{name}_overlay.tif"
            with tifffile.TiffWriter(p) as tw:
                for i in range(n):
                    img = None if frames is None else frames[i]
                    tw.write(overlay(img, labels[i], LAYER_COLOURS[k % len(LAYER_COLOURS)]),
                             photometric="rgb", contiguous=True)
            written.append(p)
        i = n // 2 if frame is None else int(frame)
        if not 0 <= i < n:
            raise ValueError(f"--frame {i} is outside the recording's 0..{n - 1}")
        fig_frame = None if frames is None else frames[i]
        fig_planes = planes[i]
    df = read_particles(recording)
    for k in range(L):
        p = out / f"particles_layer_{layer_name(k)}.csv"
        df[df["layer"] == k + 1].to_csv(p, index=False)
        written.append(p)
    written.append(_figure(out / "figure.png", fig_frame, fig_planes, i))
    return written


def _figure(path: Path, frame, planes, index: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = planes.shape[0]
    fig, axes = plt.subplots(1, L + 1, figsize=(4 * (L + 1), 4.2))
    h, w = planes.shape[1:]
    axes[0].imshow(np.zeros((h, w)) if frame is None else _display(frame), cmap="gray")
    axes[0].set_title(f"input (frame {index})")
    for k in range(L):
        n = len(set(np.unique(planes[k]).tolist()) - {0})
        axes[k + 1].imshow(overlay(frame, planes[k], LAYER_COLOURS[k % len(LAYER_COLOURS)]))
        axes[k + 1].set_title(f"layer {layer_name(k)}: {n} particles")
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
