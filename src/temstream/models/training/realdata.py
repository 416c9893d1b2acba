"""Real labelled TEM images used for validation (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: the folder of real labelled images (images/, labels/) when no path is given
REAL_DATA_ENV = "TEMSTREAM_REAL_DATA"


def default_real_dir() -> Path | None:
    """The folder named by ``$TEMSTREAM_REAL_DATA`` if it holds ``images/``, else None."""
    cand = os.environ.get(REAL_DATA_ENV)
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


def labelled_image_pairs(pairs, seed: int, *, size: int, target_fn):
    """Endless random crops of labelled images, for fine-tuning.

    Parameters
    ----------
    pairs : list of (name, image (H, W), mask (H, W) bool)
        Labelled images (e.g. :func:`load_msa_em`); every image at least ``size`` px on each
        side.
    seed : int
        Seeds the crop positions.
    size : int
        Crop edge (px).
    target_fn : callable
        ``target_fn(instance_labels (size, size) int) -> classes (size, size) uint8`` (the
        training target of the model's task, e.g.
        :func:`temstream.sim.training.particle_target`).

    Yields
    ------
    image : ndarray, shape (size, size)
        The crop, in the image's own dtype.
    target : ndarray, shape (size, size), uint8
        ``target_fn`` of the crop's connected components.
    """
    from scipy import ndimage

    small = [p[0] for p in pairs if min(p[1].shape) < size]
    if small:
        raise ValueError(f"images {small[:3]} are smaller than the {size} px training crop; "
                         "pass size=... no larger than the smallest image")
    rng = np.random.default_rng(seed)
    while True:
        _, image, mask = pairs[int(rng.integers(len(pairs)))]
        y = int(rng.integers(0, image.shape[0] - size + 1))
        x = int(rng.integers(0, image.shape[1] - size + 1))
        crop = np.asarray(mask[y:y + size, x:x + size], bool)
        labels, _ = ndimage.label(crop, structure=np.ones((3, 3)))
        yield np.ascontiguousarray(image[y:y + size, x:x + size]), target_fn(labels)
