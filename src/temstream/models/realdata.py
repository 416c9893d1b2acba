"""Real labelled TEM images used for validation (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: where the msa-em-train images are looked for when no path is given
REAL_DATA_ENV = "TEMSTREAM_REAL_DATA"


def default_real_dir() -> Path | None:
    """``$TEMSTREAM_REAL_DATA``, else ``../shared/data/real/msa-em-train`` from the working
    directory, else None."""
    for cand in (os.environ.get(REAL_DATA_ENV), Path.cwd().parent / "shared/data/real/msa-em-train"):
        if cand and (Path(cand) / "images").is_dir():
            return Path(cand)
    return None


def load_msa_em(directory: str | os.PathLike) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The msa-em-train pairs.

    Parameters
    ----------
    directory : path
        Folder with ``images/image_K.png`` and ``labels/label_K.png``.

    Returns
    -------
    list of (name, image, mask)
        ``image`` (H, W) uint8 grey levels, ``mask`` (H, W) bool (label 255 = particle), sorted
        by K.
    """
    from PIL import Image

    d = Path(directory)
    imgs = sorted((d / "images").glob("image_*.png"), key=lambda p: int(p.stem.split("_")[1]))
    if not imgs:
        raise FileNotFoundError(f"no images/image_*.png under {d}")
    out = []
    for ip in imgs:
        k = ip.stem.split("_")[1]
        lp = d / "labels" / f"label_{k}.png"
        im = np.asarray(Image.open(ip).convert("L"))
        lab = np.asarray(Image.open(lp).convert("L")) > 127
        out.append((ip.stem, im, lab))
    return out
