"""Particle sets: shapes, sizes, materials and 3-D orientations, and their kernel geometry.

A :class:`ParticleSet` holds one row per particle in physical units (nm, field coordinates:
x = column direction, y = row direction, z along the beam). :func:`kernel_geometry` turns it
into the pixel-unit arrays that :func:`temstream.sim._raster.rasterize` consumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from temstream.sim import _raster

#: shape name -> code; codes index SYMMETRY
SHAPES = ("sphere", "cube", "prism", "rod", "blob")
#: n-fold in-plane symmetry of each shape (angle truth is meaningful modulo 2 pi / n)
SYMMETRY = np.array([1, 4, 3, 2, 1])

#: material -> (effective mean free path range in nm, mean inner potential in V). The mean free
#: paths are effective (they include the objective aperture) and are randomised within the range;
#: gold is darkest, organic matter barely differs from water (Lambda_water 185-430 nm, V0 ~4.5 V).
MATERIALS = {
    "Au": ((20.0, 85.0), 25.0),
    "Pt": ((20.0, 70.0), 27.0),
    "Ag": ((50.0, 120.0), 20.0),
    "Pd": ((40.0, 110.0), 22.0),
    "FeOx": ((90.0, 160.0), 17.0),
    "SiO2": ((150.0, 250.0), 10.0),
    "organic": ((260.0, 420.0), 7.5),
}


@dataclass
class ParticleSet:
    """Columns of a set of particles (all arrays share the first axis n).

    Attributes
    ----------
    shape : (n,) int8, index into :data:`SHAPES`
    size_nm : (n,) float64, characteristic diameter (sphere/blob diameter, cube and prism edge,
        rod diameter)
    aspect : (n,) float64, rod length/diameter, prism thickness/edge, blob axis ratio (cube, sphere: 1)
    scale : (n,) float64, growth factor applied to ``size_nm`` (etching/growth)
    pos_nm : (n, 3) float64, centre in field coordinates
    rot : (n, 3, 3) float64, body-to-world rotation matrices
    harm : (n, 4, 3) float64, radial modulation (m, amplitude, phase) of blobs
    lambda_nm : (n,) float64, effective mean free path of the material
    v0 : (n,) float64, mean inner potential (V)
    layer : (n,) int64, layer index (0 unless a multilayer scenario)
    pid : (n,) int64, track id
    angle : (n,) float64, unwrapped in-plane orientation (rad)
    """

    shape: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    size_nm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    aspect: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pos_nm: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    rot: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    harm: np.ndarray = field(default_factory=lambda: np.zeros((0, _raster.MAX_HARMONICS, 3)))
    lambda_nm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v0: np.ndarray = field(default_factory=lambda: np.zeros(0))
    layer: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    angle: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.shape)

    def take(self, index) -> "ParticleSet":
        """A new set with the rows selected by ``index`` (bool mask or integer array)."""
        return ParticleSet(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def concat(self, other: "ParticleSet") -> "ParticleSet":
        """This set followed by ``other``."""
        return ParticleSet(**{f.name: np.concatenate([getattr(self, f.name),
                                                      getattr(other, f.name)])
                              for f in fields(self)})

    def in_plane_angle(self) -> np.ndarray:
        """Wrapped in-plane orientation (rad) of the body x axis, shape (n,)."""
        return np.arctan2(self.rot[:, 1, 0], self.rot[:, 0, 0])

    def update_angle(self) -> None:
        """Advance the unwrapped ``angle`` to the current rotation (call after each rotation step)."""
        d = self.in_plane_angle() - self.angle
        self.angle = self.angle + (d + np.pi) % (2 * np.pi) - np.pi

    def radius_nm(self) -> np.ndarray:
        """Bounding-sphere radius (nm), shape (n,)."""
        s = self.size_nm * self.scale
        r = np.empty(len(self))
        code = self.shape
        r[code == 0] = s[code == 0] / 2
        r[code == 1] = s[code == 1] * np.sqrt(3) / 2
        m = code == 2
        r[m] = np.hypot(s[m] / np.sqrt(3), s[m] * self.aspect[m] / 2)
        m = code == 3
        r[m] = s[m] * self.aspect[m] / 2
        m = code == 4
        amp = np.abs(self.harm[m, :, 1]).sum(axis=1)
        r[m] = s[m] / 2 * np.maximum(1.0, self.aspect[m]) * (1 + amp)
        return r


# ---------------------------------------------------------------- rotations

def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed 3-D rotations, shape (n, 3, 3)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return quat_to_matrix(q)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (n, 4) as (w, x, y, z) -> rotation matrices (n, 3, 3)."""
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def axis_angle(v: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) for rotation vectors ``v`` (n, 3) (axis * angle in rad)."""
    ang = np.linalg.norm(v, axis=1)
    q = np.empty((len(v), 4))
    q[:, 0] = np.cos(ang / 2)
    s = np.where(ang > 1e-12, np.sin(ang / 2) / np.maximum(ang, 1e-12), 0.5)
    q[:, 1:] = v * s[:, None]
    return quat_to_matrix(q)


def rot_z(theta: np.ndarray) -> np.ndarray:
    """In-plane rotations by ``theta`` (n,) rad, shape (n, 3, 3)."""
    c, s = np.cos(theta), np.sin(theta)
    o, z = np.ones_like(theta), np.zeros_like(theta)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1),
                     np.stack([z, z, o], -1)], axis=1)


def lying_flat(theta: np.ndarray, tilt_rad: float, rng: np.random.Generator) -> np.ndarray:
    """Rotations of particles lying on the window: in-plane ``theta`` plus a small random tilt."""
    tilt = rng.normal(scale=tilt_rad, size=(len(theta), 3)) * np.array([1.0, 1.0, 0.0])
    return rot_z(theta) @ axis_angle(tilt)


# ---------------------------------------------------------------- construction

def make_particles(n: int, rng: np.random.Generator, *, shapes: dict, diameter_nm: float,
                   polydispersity: float, material: str, pos_nm: np.ndarray,
                   orientation: str = "random", tilt_rad: float = 0.15,
                   rod_aspect: tuple = (2.0, 5.0), prism_aspect: tuple = (0.2, 0.4),
                   lambda_nm: float | None = None, layer: int = 0,
                   first_pid: int = 0) -> ParticleSet:
    """Draw ``n`` particles.

    Parameters
    ----------
    shapes : dict
        Shape name -> relative weight, e.g. ``{"sphere": 3, "rod": 1}``.
    diameter_nm, polydispersity : float
        Mean characteristic size (nm) and its relative standard deviation (lognormal).
    material : str
        Key of :data:`MATERIALS`; sets the mean free path range and mean inner potential.
    pos_nm : (n, 3) array
        Centres.
    orientation : {"random", "flat"}
        Uniform 3-D orientations, or lying on the window with a small tilt (``tilt_rad``).
    lambda_nm : float, optional
        Fixed mean free path; default: drawn once for the whole set from the material's range.
    """
    if material not in MATERIALS:
        raise ValueError(f"unknown material {material!r}; choose one of {sorted(MATERIALS)}")
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        raise ValueError(f"unknown shape(s) {sorted(unknown)}; choose from {SHAPES}")
    names = list(shapes)
    w = np.array([shapes[k] for k in names], float)
    code = np.array([SHAPES.index(k) for k in names])[rng.choice(len(names), size=n, p=w / w.sum())]
    sig = np.sqrt(np.log1p(polydispersity**2))
    size = diameter_nm * np.exp(rng.normal(-sig**2 / 2, sig, size=n))
    aspect = np.ones(n)
    m = code == 3
    aspect[m] = rng.uniform(*rod_aspect, size=m.sum())
    m = code == 2
    aspect[m] = rng.uniform(*prism_aspect, size=m.sum())
    m = code == 4
    aspect[m] = rng.uniform(0.7, 1.0, size=m.sum())
    harm = np.zeros((n, _raster.MAX_HARMONICS, 3))
    harm[:, :, 0] = np.arange(2, 2 + _raster.MAX_HARMONICS)
    harm[m, :, 1] = rng.uniform(0, 0.12, size=(m.sum(), _raster.MAX_HARMONICS)) / harm[m, :, 0]
    harm[:, :, 2] = rng.uniform(0, 2 * np.pi, size=(n, _raster.MAX_HARMONICS))
    if orientation == "random":
        rot = random_rotations(n, rng)
    elif orientation == "flat":
        rot = lying_flat(rng.uniform(0, 2 * np.pi, n), tilt_rad, rng)
    else:
        raise ValueError(f"orientation must be 'random' or 'flat', not {orientation!r}")
    lam_range, v0 = MATERIALS[material]
    lam = lambda_nm if lambda_nm is not None else rng.uniform(*lam_range)
    ps = ParticleSet(
        shape=code.astype(np.int8), size_nm=size, aspect=aspect, scale=np.ones(n),
        pos_nm=np.asarray(pos_nm, float).reshape(n, 3), rot=rot, harm=harm,
        lambda_nm=np.full(n, float(lam)), v0=np.full(n, float(v0)),
        layer=np.full(n, layer, np.int64), pid=np.arange(first_pid, first_pid + n),
        angle=np.zeros(n))
    ps.angle = ps.in_plane_angle()
    return ps


def _prism_planes():
    ang = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
    side = np.stack([np.cos(ang), np.sin(ang), np.zeros(3)], -1)
    return side


_CUBE_N = np.concatenate([np.eye(3), -np.eye(3)])
_PRISM_SIDE = _prism_planes()


def kernel_geometry(ps: ParticleSet, pixel_size_nm: float, offset_px=(0.0, 0.0)):
    """Pixel-unit geometry of a particle set for :func:`temstream.sim._raster.rasterize`.

    Parameters
    ----------
    ps : ParticleSet
    pixel_size_nm : float
    offset_px : (dx, dy)
        Added to the centres (stage drift, region-of-interest origin), px.

    Returns
    -------
    dict of arrays: kind, center, quad, harm, planes, nplanes, capsule, radius (px).
    """
    n = len(ps)
    p = pixel_size_nm
    s = ps.size_nm * ps.scale / p
    kind = np.zeros(n, np.int8)
    center = ps.pos_nm / p
    center = center + np.array([offset_px[0], offset_px[1], 0.0])
    quad = np.zeros((n, 3, 3))
    planes = np.zeros((n, _raster.MAX_PLANES, 4))
    nplanes = np.zeros(n, np.int64)
    capsule = np.zeros((n, 5))
    harm = np.array(ps.harm, float, copy=True)
    code = ps.shape
    # ellipsoids: spheres and blobs
    m = (code == 0) | (code == 4)
    if m.any():
        semi = np.stack([s[m] / 2, s[m] / 2 * np.where(code[m] == 4, ps.aspect[m], 1.0),
                         s[m] / 2], -1)
        r = ps.rot[m]
        quad[m] = np.einsum("nij,nj,nkj->nik", r, 1.0 / semi**2, r)
        # radial modulation rotates with the particle
        harm[m, :, 2] -= harm[m, :, 0] * ps.in_plane_angle()[m, None]
    harm[code != 4, :, 1] = 0.0
    kind[m] = _raster.ELLIPSOID
    m = code == 1
    if m.any():
        kind[m] = _raster.POLYHEDRON
        nplanes[m] = 6
        planes[m, :6, :3] = np.einsum("nij,pj->npi", ps.rot[m], _CUBE_N)
        planes[m, :6, 3] = s[m, None] / 2
    m = code == 2
    if m.any():
        kind[m] = _raster.POLYHEDRON
        nplanes[m] = 5
        body = np.concatenate([_PRISM_SIDE, [[0, 0, 1.0], [0, 0, -1.0]]])
        planes[m, :5, :3] = np.einsum("nij,pj->npi", ps.rot[m], body)
        planes[m, :3, 3] = s[m, None] / (2 * np.sqrt(3))
        planes[m, 3:5, 3] = (s[m] * ps.aspect[m] / 2)[:, None]
    m = code == 3
    if m.any():
        kind[m] = _raster.CAPSULE
        capsule[m, :3] = ps.rot[m, :, 0]
        capsule[m, 3] = np.maximum(s[m] * (ps.aspect[m] - 1) / 2, 0.0)
        capsule[m, 4] = s[m] / 2
    return dict(kind=kind, center=center, quad=quad, harm=harm, planes=planes,
                nplanes=nplanes, capsule=capsule, radius=ps.radius_nm() / p)


def bboxes(center: np.ndarray, radius: np.ndarray, shape) -> np.ndarray:
    """Bounding boxes (row0, row1, col0, col1), clipped to ``shape``; shape (n, 4) int64."""
    h, w = shape
    r = radius + 1.5
    b = np.stack([np.floor(center[:, 1] - r), np.ceil(center[:, 1] + r) + 1,
                  np.floor(center[:, 0] - r), np.ceil(center[:, 0] + r) + 1], -1)
    b[:, :2] = np.clip(b[:, :2], 0, h)
    b[:, 2:] = np.clip(b[:, 2:], 0, w)
    return b.astype(np.int64)
