"""Particle dynamics of the scenarios (overdamped Langevin steps on a ParticleSet)."""

from __future__ import annotations

import numpy as np


def hex_sites(shape, a_px: float, theta: float, origin_px, margin_px: float = 0.0) -> np.ndarray:
    """Sites of a hexagonal lattice covering a frame (plus a margin).

    Parameters
    ----------
    shape : (H, W)
    a_px : float
        Lattice constant (px).
    theta : float
        Lattice orientation (rad).
    origin_px : (2,)
        Position of one site (x, y) px.

    Returns
    -------
    (n, 2) float64 sites (x, y) in px.
    """
    return _lattice_sites(shape, a_px, theta, origin_px, margin_px,
                          np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]]))


def square_sites(shape, a_px: float, theta: float, origin_px, margin_px: float = 0.0):
    """Sites (n, 2) px of a square lattice covering a frame; see :func:`hex_sites`."""
    return _lattice_sites(shape, a_px, theta, origin_px, margin_px, np.eye(2))


def _lattice_sites(shape, a_px, theta, origin_px, margin_px, basis):
    h, w = shape
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    vec = basis @ rot.T * a_px
    reach = int(np.ceil((np.hypot(h, w) + 2 * margin_px) / (a_px * 0.8))) + 2
    i, j = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    centre = np.array([w / 2, h / 2])
    o = np.asarray(origin_px, float)
    o = o + np.round((centre - o) @ np.linalg.inv(vec)) @ vec
    pts = o + i.reshape(-1, 1) * vec[0] + j.reshape(-1, 1) * vec[1]
    ok = ((pts[:, 0] > -margin_px) & (pts[:, 0] < w + margin_px)
          & (pts[:, 1] > -margin_px) & (pts[:, 1] < h + margin_px))
    return pts[ok]


# ---------------------------------------------------------------------------- dynamics

from scipy.spatial import cKDTree  # noqa: E402

from temstream.sim import particles as P  # noqa: E402


class Dynamics:
    """Particles of a scenario and their time evolution.

    Parameters
    ----------
    params : dict
        Full scenario parameters (``dynamics`` selects the model).
    shape : (H, W)
        Frame shape (px); the simulated field extends ``margin_nm`` beyond it on every side so
        that particles can enter and leave.
    rng : numpy Generator

    Attributes
    ----------
    ps : ParticleSet
        Current particles (positions in field nm, origin at pixel (0, 0)).
    """

    KINDS = ("brownian", "assembly", "etching", "hex-lattice", "cube-lattice", "moire")

    def __init__(self, params: dict, shape, rng: np.random.Generator):
        self.p = params
        self.rng = rng
        kind = params["dynamics"]
        if kind not in self.KINDS:
            raise ValueError(f"unknown dynamics {kind!r}; choose one of {self.KINDS}")
        self.kind = kind
        px = params["pixel_size_nm"]
        h, w = shape
        self.size_nm = np.array([w * px, h * px])
        self.margin_nm = 1.5 * params["diameter_nm"] * 2.5 + 10 * px
        self.next_pid = 0
        self.t = 0.0
        getattr(self, "_init_" + kind.replace("-", "_"))()

    # -------------------------------------------------------------- helpers
    def _area_um2(self):
        return float(np.prod(self.size_nm + 2 * self.margin_nm)) * 1e-6

    def _new(self, n, pos_xy, *, layer=0, diameter=None, shapes=None, orientation=None):
        pr = self.p
        pos = np.zeros((n, 3))
        pos[:, :2] = pos_xy
        ps = P.make_particles(
            n, self.rng, shapes=shapes or pr["shapes"],
            diameter_nm=diameter or pr["diameter_nm"], polydispersity=pr["polydispersity"],
            material=pr["material"], pos_nm=pos, orientation=orientation or pr["orientation"],
            layer=layer, first_pid=self.next_pid,
            lambda_nm=pr.get("lambda_np_nm"))
        self.next_pid += n
        return ps

    def _uniform_xy(self, n):
        lo = -self.margin_nm
        return self.rng.uniform(lo, self.size_nm + self.margin_nm, size=(n, 2))

    def _separate(self, iters=2):
        """Push overlapping particles apart (hard cores, in projection)."""
        ps = self.ps
        if len(ps) < 2:
            return
        r = 0.5 * ps.size_nm * ps.scale
        for _ in range(iters):
            tree = cKDTree(ps.pos_nm[:, :2])
            pairs = tree.query_pairs(2 * r.max(), output_type="ndarray")
            if len(pairs) == 0:
                return
            i, j = pairs.T
            d = ps.pos_nm[j, :2] - ps.pos_nm[i, :2]
            dist = np.maximum(np.hypot(*d.T), 1e-6)
            over = r[i] + r[j] - dist
            m = over > 0
            if not m.any():
                return
            push = (0.5 * over[m] / dist[m])[:, None] * d[m]
            np.add.at(ps.pos_nm[:, :2], i[m], -push)
            np.add.at(ps.pos_nm[:, :2], j[m], push)

    def _brownian(self, dt, d_scale=1.0):
        ps, pr, rng = self.ps, self.p, self.rng
        n = len(ps)
        d_i = pr["diffusion_nm2_per_s"] * d_scale * pr["diameter_nm"] / np.maximum(
            ps.size_nm * ps.scale, 0.5)
        ps.pos_nm[:, :2] += np.sqrt(2 * d_i * dt)[:, None] * rng.normal(size=(n, 2))
        ps.pos_nm[:, :2] += np.asarray(pr["flow_nm_per_s"]) * dt
        dr = pr["rot_diffusion_rad2_per_s"]
        if dr > 0:
            if pr["orientation"] == "flat":
                ps.rot = P.rot_z(np.sqrt(2 * dr * dt) * rng.normal(size=n)) @ ps.rot
            else:
                ps.rot = P.axis_angle(np.sqrt(2 * dr * dt) * rng.normal(size=(n, 3))) @ ps.rot
        ps.update_angle()

    def _enter_leave(self):
        """Remove particles that left the extended field; new ones enter through its border."""
        ps = self.ps
        lo, hi = -self.margin_nm, self.size_nm + self.margin_nm
        inside = np.all((ps.pos_nm[:, :2] > lo) & (ps.pos_nm[:, :2] < hi), axis=1)
        self.ps = ps.take(inside)
        missing = self.n_target - len(self.ps)
        if missing > 0:
            n = int(self.rng.binomial(missing, 0.5)) if missing > 1 else missing
            xy = self._uniform_xy(4 * n + 4)
            vis = np.all((xy > -0.5 * self.margin_nm)
                         & (xy < self.size_nm + 0.5 * self.margin_nm), axis=1)
            xy = xy[~vis][:n]   # only in the band outside the visible field
            if len(xy):
                self.ps = self.ps.concat(self._new(len(xy), xy))

    # -------------------------------------------------------------- brownian
    def _init_brownian(self):
        self.n_target = max(int(round(self.p["density_per_um2"] * self._area_um2())), 0)
        self.ps = self._new(self.n_target, self._uniform_xy(self.n_target))
        self._separate(4)

    def _step_brownian(self, dt):
        self._brownian(dt)
        self._separate()
        if self.p["entering"]:
            self._enter_leave()

    # -------------------------------------------------------------- assembly
    _init_assembly = _init_brownian

    def _step_assembly(self, dt):
        pr = self.p
        step = np.sqrt(2 * pr["diffusion_nm2_per_s"] * dt)
        nsub = int(np.clip(np.ceil(step / (0.15 * pr["diameter_nm"])), 1, 20))
        h = dt / nsub
        lam, eps = pr["attraction_range_nm"], pr["attraction_strength"]
        for _ in range(nsub):
            ps = self.ps
            r = 0.5 * ps.size_nm * ps.scale
            bound = np.zeros(len(ps))
            pairs = np.zeros((0, 2), int)
            if len(ps) > 1:
                tree = cKDTree(ps.pos_nm[:, :2])
                pairs = tree.query_pairs(2 * r.max() + 3 * lam, output_type="ndarray")
            if len(pairs):
                i, j = pairs.T
                d = ps.pos_nm[j, :2] - ps.pos_nm[i, :2]
                dist = np.maximum(np.hypot(*d.T), 1e-6)
                gap = np.maximum(dist - r[i] - r[j], 0.0)
                # overdamped drift D F / kT of U = -eps kT exp(-gap/lam), capped per step
                mob = pr["diffusion_nm2_per_s"] * h
                f = np.minimum(mob * eps / lam * np.exp(-gap / lam), 0.5 * gap + 0.05 * lam)
                mv = (f / dist)[:, None] * d
                np.add.at(ps.pos_nm[:, :2], i, mv)
                np.add.at(ps.pos_nm[:, :2], j, -mv)
                # bound particles diffuse less (cluster mobility falls with size)
                close = gap < 0.3 * lam
                np.add.at(bound, i[close], 1)
                np.add.at(bound, j[close], 1)
            self._brownian_scaled(h, 1.0 / (1.0 + 2.0 * bound))
            self._separate()
        if pr["entering"]:
            self._enter_leave()

    def _brownian_scaled(self, dt, factor):
        ps, pr, rng = self.ps, self.p, self.rng
        n = len(ps)
        d_i = pr["diffusion_nm2_per_s"] * factor
        ps.pos_nm[:, :2] += np.sqrt(2 * d_i * dt)[:, None] * rng.normal(size=(n, 2))
        ps.pos_nm[:, :2] += np.asarray(pr["flow_nm_per_s"]) * dt
        dr = pr["rot_diffusion_rad2_per_s"] * factor
        ps.rot = P.axis_angle(np.sqrt(2 * dr * dt)[:, None] * rng.normal(size=(n, 3))) @ ps.rot
        ps.update_angle()

    # -------------------------------------------------------------- etching
    def _init_etching(self):
        self._init_brownian()
        lo, hi = self.p["growth_nm_per_s"]
        self.rate = self.rng.uniform(lo, hi, len(self.ps))

    def _step_etching(self, dt):
        pr = self.p
        self._brownian(dt)
        ps = self.ps
        ps.scale = ps.scale + self.rate * dt / ps.size_nm
        alive = ps.size_nm * ps.scale > 1.0
        self.ps, self.rate = ps.take(alive), self.rate[alive]
        n = self.rng.poisson(pr["nucleation_per_um2_s"] * self._area_um2() * dt)
        if n:
            new = self._new(n, self._uniform_xy(n))
            new.scale[:] = 1.5 / new.size_nm
            self.ps = self.ps.concat(new)
            self.rate = np.concatenate([self.rate, self.rng.uniform(0.5, 3.0, n)])
        self._separate()

    # -------------------------------------------------------------- lattices
    def _lattice(self, sites_nm, layer=0, diameter=None, shapes=None, orientation="flat"):
        keep = self.rng.random(len(sites_nm)) >= self.p["vacancy_fraction"]
        sites_nm = sites_nm[keep]
        ps = self._new(len(sites_nm), sites_nm, layer=layer, diameter=diameter, shapes=shapes,
                       orientation=orientation)
        return ps, sites_nm

    def _ou(self, u, dt):
        pr = self.p
        a = np.exp(-dt / pr["vibration_time_s"])
        return u * a + pr["vibration_nm"] * np.sqrt(1 - a * a) * self.rng.normal(size=u.shape)

    def _sites(self, fn, a_nm, theta):
        px = self.p["pixel_size_nm"]
        shape = (self.size_nm[1] / px, self.size_nm[0] / px)
        origin = self.rng.uniform(0, a_nm / px, 2)
        return fn(shape, a_nm / px, theta, origin, self.margin_nm / px) * px

    def _init_hex_lattice(self):
        pr = self.p
        a = pr["diameter_nm"] + pr["lattice_gap_nm"]
        sites = self._sites(hex_sites, a, self.rng.uniform(0, np.pi / 3))
        self.ps, self.sites = self._lattice(sites, shapes={"sphere": 1.0})
        self.u = np.zeros((len(self.ps), 2))

    def _step_hex_lattice(self, dt):
        self.u = self._ou(self.u, dt)
        self.ps.pos_nm[:, :2] = self.sites + self.u

    def _init_cube_lattice(self):
        pr = self.p
        a = pr["diameter_nm"] * np.sqrt(2) * 0.8 + pr["lattice_gap_nm"]
        sites = self._sites(square_sites, a, self.rng.uniform(0, np.pi / 2))
        self.ps, self.sites = self._lattice(sites, shapes={"cube": 1.0}, orientation="flat")
        self.u = np.zeros((len(self.ps), 2))
        self.omega = self.rng.normal(0, pr["angular_speed_rad_per_s"], len(self.ps))

    def _step_cube_lattice(self, dt):
        pr = self.p
        self.u = self._ou(self.u, dt)
        self.ps.pos_nm[:, :2] = self.sites + self.u
        n = len(self.ps)
        dth = self.omega * dt + np.sqrt(2 * pr["rot_diffusion_rad2_per_s"] * dt) * \
            self.rng.normal(size=n)
        self.ps.rot = P.rot_z(dth) @ self.ps.rot
        self.ps.update_angle()

    def _init_moire(self):
        from temstream.sim.lattices import layer_sites

        pr = self.p
        a = pr["diameter_nm"] + pr["lattice_gap_nm"]
        th = self.rng.uniform(0, np.pi / 3)
        extent = (self.size_nm[1], self.size_nm[0])
        common = dict(margin=self.margin_nm, vacancy_fraction=pr["vacancy_fraction"],
                      interstitial_fraction=pr.get("interstitial_fraction", 0.0))
        la = layer_sites(extent, a, th, self.rng.uniform(0, a, 2), self.rng,
                         misorientation=np.deg2rad(pr.get("grain_misorientation_deg", 0.0)),
                         **common)
        pa = self._new(len(la), la.sites, layer=0, shapes={"sphere": 1.0}, orientation="flat")
        # layer B: twisted; smaller particles by default (equal-size layers with ratio 1, when
        # only the lattice tells the layers apart)
        ratio = pr.get("layer_b_size_ratio", 0.75)
        ab = a * pr.get("lattice_ratio_b", 1.0)
        lb = layer_sites(extent, ab, th + np.deg2rad(pr["twist_deg"]),
                         self.rng.uniform(0, ab, 2), self.rng,
                         coverage=pr.get("layer_b_coverage", 1.0), **common)
        pb = self._new(len(lb), lb.sites, layer=1, diameter=pr["diameter_nm"] * ratio,
                       shapes={"sphere": 1.0}, orientation="flat")
        pb.pos_nm[:, 2] = -pr["diameter_nm"]
        self.ps = pa.concat(pb)
        self.sites = np.concatenate([la.sites, lb.sites])
        self.interstitial = np.r_[la.interstitial, lb.interstitial]
        self.layer_b = np.r_[np.zeros(len(pa), bool), np.ones(len(pb), bool)]
        self.vacant = np.concatenate([la.vacant, lb.vacant])
        self.vacant_layer = np.r_[np.zeros(len(la.vacant), np.int64),
                                  np.ones(len(lb.vacant), np.int64)]
        self.u = np.zeros((len(self.ps), 2))

    def _step_moire(self, dt):
        pr = self.p
        self.u = self._ou(self.u, dt)
        # layer B keeps twisting slowly about the field centre (its vacant sites with it)
        dth = np.deg2rad(pr["twist_rate_deg_per_s"]) * dt
        c = self.size_nm / 2
        cs, sn = np.cos(dth), np.sin(dth)
        rot = np.array([[cs, sn], [-sn, cs]])
        self.sites[self.layer_b] = c + (self.sites[self.layer_b] - c) @ rot
        vb = self.vacant_layer == 1
        self.vacant[vb] = c + (self.vacant[vb] - c) @ rot
        self.ps.pos_nm[:, :2] = self.sites + self.u

    # -------------------------------------------------------------- public
    def step(self, dt: float) -> None:
        """Advance the particles by ``dt`` seconds."""
        getattr(self, "_step_" + self.kind.replace("-", "_"))(dt)
        self.t += dt
