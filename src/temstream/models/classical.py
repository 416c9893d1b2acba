"""The classical segmenter: smoothing, an automatic threshold and morphology.

It is the baseline every model is compared with and the cheap CPU path. It follows the
:class:`~temstream.models` segmenter interface: ``seg(frame) -> (C, H, W)`` class
probabilities with ``classes = ("background", "particle")``. The "probability" of a pixel is a
logistic function of its distance from the automatic threshold in units of the background noise,
so the instance stage (threshold 0.5) recovers exactly the thresholded mask, and pixels near the
threshold get a low confidence.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage import filters, morphology

def _threshold_sigma(values: np.ndarray, k: float = 4.0) -> float:
    """Background median + k robust standard deviations (MAD): particles are the outliers."""
    med = np.median(values)
    return float(med + k * 1.4826 * np.median(np.abs(values - med)))


_METHODS = {
    "sigma": _threshold_sigma,
    "otsu": filters.threshold_otsu,
    "li": filters.threshold_li,
    "triangle": filters.threshold_triangle,
    "yen": filters.threshold_yen,
}


def flatten(image: np.ndarray, scale: int) -> np.ndarray:
    """Divide out slow illumination and thickness variations.

    The background is a median filter of a block-averaged copy (blocks of ``scale // 8`` px,
    median over 9x9 blocks), so particles and bubbles smaller than about ``scale / 2`` do not
    pull it; it is brought back to full size by bilinear interpolation.

    Parameters
    ----------
    image : ndarray of float32, shape (H, W)
    scale : int
        Size of the structures considered background, pixels.
    """
    h, w = image.shape
    block = max(1, scale // 8)
    small = cv2.resize(image, (max(1, w // block), max(1, h // block)),
                       interpolation=cv2.INTER_AREA)
    background = cv2.medianBlur(small, 5) if min(small.shape) >= 5 else small
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    return image / np.maximum(background, 1e-6)


class ClassicalSegmenter:
    """Background flattening + smoothing + automatic threshold + morphology.

    Parameters
    ----------
    sigma : float
        Gaussian smoothing, pixels (0 = none).
    method : {"sigma", "otsu", "li", "triangle", "yen"}
        Automatic threshold: ``sigma`` = background median + 4 robust standard deviations
        (works with few particles), or a histogram method of scikit-image. Either is computed
        without the pixels more than 4 robust standard deviations on the background's far side
        (bubbles, thin liquid), which would otherwise form a class of their own.
    polarity : {"dark", "bright"}
        Particles darker than the background (bright-field TEM: they scatter electrons out of
        the objective aperture) or brighter (dark-field, HAADF).
    opening_radius : int
        Radius of the morphological opening that removes speckle, pixels.
    min_area : int
        Smaller connected components are removed, pixels.
    fill_holes : bool
        Fill holes inside particles (e.g. bright Fresnel fringes).
    """

    name = "classical"
    classes = ("background", "particle")
    threshold = 0.5
    #: the "probabilities" scale the distance from the threshold; they are not calibrated, so
    #: the expected-Dice outline rule does not apply (the instance stage outlines at 0.5)
    calibrated = False

    def __init__(self, sigma: float = 1.5, method: str = "otsu", polarity: str = "dark",
                 opening_radius: int = 1, min_area: int = 16, fill_holes: bool = True,
                 background_scale: int = 256):
        if method not in _METHODS:
            raise ValueError(f"unknown threshold method {method!r}; choose one of "
                             f"{', '.join(_METHODS)}")
        if polarity not in ("dark", "bright"):
            raise ValueError(f"polarity must be 'dark' or 'bright', got {polarity!r}")
        self.sigma, self.method, self.polarity = float(sigma), method, polarity
        self.opening_radius, self.min_area, self.fill_holes = opening_radius, min_area, fill_holes
        self.background_scale = int(background_scale)
        self._footprint = (cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * opening_radius + 1, 2 * opening_radius + 1))
            if opening_radius > 0 else None)

    def mask(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Foreground mask of one frame.

        Returns
        -------
        mask : ndarray of bool, shape (H, W)
        signal : ndarray of float32, shape (H, W)
            Smoothed frame, sign-flipped for dark particles so that particles are high.
        threshold : float
            The automatic threshold on ``signal``.
        noise : float
            Robust noise level of ``signal`` (MAD), used to scale probabilities.
        """
        image = np.asarray(frame, dtype=np.float32)
        if image.ndim != 2:
            raise ValueError(f"expected a 2-D frame, got shape {image.shape}")
        if self.background_scale > 0:
            image = flatten(image, self.background_scale)
        signal = cv2.GaussianBlur(image, (0, 0), self.sigma) if self.sigma > 0 else image.copy()
        if self.polarity == "dark":
            np.negative(signal, out=signal)
        # threshold on a decimated copy: same value, a fraction of the cost on large frames
        step = max(1, int(np.sqrt(signal.size / 262144)))
        sample = signal[::step, ::step]
        if np.ptp(sample) == 0:
            return np.zeros(image.shape, bool), signal, float(sample.flat[0]), 1.0
        med = float(np.median(sample))
        noise = float(np.median(np.abs(sample - med))) * 1.4826 or 1.0
        # pixels far on the other side of the background (bubbles, thin liquid, holes in the
        # support) would otherwise be one class of a histogram method and the whole background
        # the other; they are never particles, so the threshold is sought without them
        typical = sample[sample > med - 4.0 * noise]
        thr = float(_METHODS[self.method](typical if np.ptp(typical) > 0 else sample))
        mask = signal > thr
        if self._footprint is not None:
            mask = cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, self._footprint) > 0
        if self.fill_holes:
            mask = ndimage.binary_fill_holes(mask)
        if self.min_area > 1:
            mask = morphology.remove_small_objects(mask, max_size=self.min_area - 1)
        return mask, signal, thr, noise

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Class probabilities of one frame.

        Parameters
        ----------
        frame : ndarray, shape (H, W)
            Raw counts (any numeric dtype).

        Returns
        -------
        ndarray of float32, shape (2, H, W)
            Background and particle probability; > 0.5 particle exactly where the mask is set.
        """
        mask, signal, thr, noise = self.mask(frame)
        z = (signal - thr) / noise
        p = np.empty((2,) + mask.shape, np.float32)
        # confidence grows with the distance from the threshold in noise units; the mask
        # (after morphology) decides the side of 0.5, so thresholding at 0.5 gives it back
        conf = 0.51 + 0.49 * (1.0 - np.exp(-np.abs(z)))
        p[1] = np.where(mask, conf, 1.0 - conf)
        p[0] = 1.0 - p[1]
        return p

    def predict_batch(self, frames: np.ndarray) -> np.ndarray:
        """Probabilities of a stack, (B, H, W) -> (B, 2, H, W)."""
        return np.stack([self(f) for f in frames])
