"""Named scenario presets: physical parameters plus particle dynamics.

Every scenario is a flat, JSON-serialisable dict: the image-formation parameters of
:data:`PHYSICS` (shared defaults) overridden by the scenario's own. ``simulate(..., **overrides)``
accepts any of these keys.
"""

from __future__ import annotations

import copy

#: image formation and liquid-cell defaults (units in the names)
PHYSICS = {
    # optics (docs/simulator.md)
    "voltage_kv": 200.0,
    "pixel_size_nm": 0.8,
    "defocus_nm": -1500.0,         # < 0 underfocus; bright Fresnel fringe outside particles
    "cs_mm": 1.2,
    "focal_spread_nm": 5.0,        # Cc sqrt((dE/E)^2 + ...)
    "convergence_mrad": 0.05,      # illumination semi-angle (spatial coherence)
    "objective_aperture_mrad": 0.0,  # 0 = none (aperture losses live in the mean free paths)
    # liquid cell
    "liquid_nm": 150.0,
    "liquid_variation": 0.08,      # relative rms of the slow thickness field
    "liquid_corr_nm": 400.0,
    "liquid_period_s": 40.0,
    "bulge": 0.15,                 # relative thickness change across the field (window bulging)
    "window_nm": 30.0,             # each of two SiN windows
    "lambda_water_nm": 300.0,
    "lambda_sin_nm": 144.0,
    "lambda_inel_water_nm": 200.0,
    "inelastic_blur_nm": 2.0,      # Cc alpha dE/E of energy-loss electrons
    "beam_broadening": 1.0,        # scale of elastic beam broadening in the liquid (0 = off)
    "texture_rad": 0.06,           # amorphous window phase rms
    "texture_corr_px": 1.0,
    "mottle_tau": 0.0,             # rms attenuation of thickness mottle in support/ice (0 = off)
    "mottle_corr_px": 8.0,
    "exposure_blur_px": 0.0,       # Gaussian blur during the exposure (vibration, drift), px
    # illumination and dose
    "dose_e_per_A2": 3.0,          # per frame
    "illumination_gradient": 0.08,
    "intensity_drift": 0.03,       # beam-induced, relative amplitude
    "intensity_period_s": 20.0,
    "stage_drift_nm_per_s": [3.0, -2.0],
    "stage_jitter_nm": 0.3,
    # acquisition events (test movies): [[frame, dx_px, dy_px], ...] sudden stage moves from
    # that frame on; frames with the beam blanked (detector offset and read noise only, nothing
    # in the truth); [[frame, dx_px, dy_px], ...] frames smeared by a move of (dx, dy) px
    # during the exposure (motion blur)
    "stage_jumps": [],
    "blank_frames": [],
    "blurred_frames": [],
    # detector
    "detector": "integrating",     # or "counting"
    "gain": 1.0,                   # counts per electron
    "offset": 100.0,
    "read_noise": 3.0,
    "mtf_f0": 0.25,
    "mtf_floor": 0.2,
    "bit_depth": 16,
    "noise": True,
    "supersample": 2,
    # distractors (not in the ground truth)
    "n_bubbles": 1,
    "n_contamination": 2,
    "n_fast": 2,                   # motion-blurred fast particles per frame
    "n_defocused": 1,              # out-of-focus particles at the other window
    # particles
    "shapes": {"sphere": 1.0},
    "material": "Au",
    "diameter_nm": 20.0,
    "polydispersity": 0.12,
    "orientation": "random",
    "density_per_um2": 300.0,
    "frame_time_s": 0.05,
    # hindered diffusion near the windows: orders of magnitude below bulk Stokes-Einstein;
    # 30 nm^2/s gives ~1.7 nm (2 px at 0.8 nm/px) steps per axis per 50 ms frame
    "diffusion_nm2_per_s": 30.0,
    "rot_diffusion_rad2_per_s": 0.5,
    "flow_nm_per_s": [0.0, 0.0],
    "entering": True,              # particles leave and new ones enter across the edges
    "n_layers": 1,
    "dynamics": "brownian",
}

#: scenario name -> parameters that differ from PHYSICS
_SCENARIO_DIFFS = {
    "dispersed": {
        "description": "Brownian translation and rotation of mixed shapes; particles drift in "
                       "and out of the field",
        "shapes": {"sphere": 3.0, "cube": 1.0, "prism": 1.0, "rod": 1.0, "blob": 1.0},
        "flow_nm_per_s": [15.0, 5.0],
        "density_per_um2": 300.0,
        "polydispersity": 0.2,
    },
    "assembly": {
        "description": "attraction into chains and clusters (short-range sticky potential)",
        "dynamics": "assembly",
        "diameter_nm": 18.0,
        "density_per_um2": 700.0,
        "diffusion_nm2_per_s": 150.0,
        "attraction_range_nm": 6.0,
        "attraction_strength": 6.0,   # well depth in kT
        "orientation": "random",
    },
    "etching": {
        "description": "particles shrinking (oxidative etching) and growing; some vanish, new "
                       "nuclei appear",
        "dynamics": "etching",
        "shapes": {"sphere": 2.0, "cube": 1.0, "blob": 2.0},
        "diameter_nm": 24.0,
        "density_per_um2": 250.0,
        "diffusion_nm2_per_s": 60.0,
        "growth_nm_per_s": [-4.0, 2.0],  # range of diameter rates
        "nucleation_per_um2_s": 2.0,
        "entering": False,
    },
    "hex-lattice": {
        "description": "hexagonal monolayer of spheres vibrating about its lattice sites",
        "dynamics": "hex-lattice",
        "diameter_nm": 14.0,
        "polydispersity": 0.06,
        "lattice_gap_nm": 5.0,
        "vibration_nm": 1.0,
        "vibration_time_s": 0.2,
        "vacancy_fraction": 0.03,
        "n_fast": 1,
        "entering": False,
    },
    "cube-lattice": {
        "description": "nanocubes in a square lattice, each rotating in place",
        "dynamics": "cube-lattice",
        "shapes": {"cube": 1.0},
        "material": "Pt",
        "diameter_nm": 16.0,
        "polydispersity": 0.05,
        "orientation": "flat",
        "lattice_gap_nm": 9.0,
        "vibration_nm": 0.6,
        "vibration_time_s": 0.2,
        "angular_speed_rad_per_s": 1.5,   # rms spin rate
        "rot_diffusion_rad2_per_s": 0.3,
        "vacancy_fraction": 0.02,
        "n_fast": 1,
        "entering": False,
    },
    "moire": {
        "description": "two stacked hexagonal layers with a twist angle, overlapping in "
                       "projection; per-layer masks in the truth",
        "dynamics": "moire",
        "n_layers": 2,
        "diameter_nm": 8.0,
        "polydispersity": 0.05,
        "lattice_gap_nm": 4.0,
        "twist_deg": 7.0,
        "twist_rate_deg_per_s": 0.5,
        "vibration_nm": 0.5,
        "vibration_time_s": 0.2,
        "vacancy_fraction": 0.0,
        "layer_b_size_ratio": 0.75,    # 1: equal-size layers (only the lattice tells them apart)
        "lattice_ratio_b": 1.0,        # layer B's lattice constant / layer A's
        "layer_b_coverage": 1.0,       # < 1: a partial second layer ending at a straight edge
        "interstitial_fraction": 0.0,  # interstitials per site, at lattice-triangle centres
        "grain_misorientation_deg": 0.0,  # > 0: layer A in two grains across a boundary
        "pixel_size_nm": 0.5,
        "n_fast": 0,
        "n_defocused": 0,
        "entering": False,
    },
    "flow": {
        "description": "particles carried through the field by liquid flow: steady entering "
                       "and leaving",
        "shapes": {"sphere": 2.0, "rod": 1.0},
        "flow_nm_per_s": [250.0, 60.0],
        "density_per_um2": 200.0,
    },
    "sparse-large": {
        "description": "few large dark particles (60-120 px) on an amorphous background, the "
                       "look of the real validation crops",
        "pixel_size_nm": 0.5,
        "diameter_nm": 45.0,
        "polydispersity": 0.25,
        "density_per_um2": 150.0,
        "texture_rad": 0.12,
        "texture_corr_px": 1.6,
        "defocus_nm": -600.0,
        "diffusion_nm2_per_s": 30.0,
        "rot_diffusion_rad2_per_s": 0.05,
        "shapes": {"sphere": 2.0, "blob": 1.0},
    },
}


def _build():
    out = {}
    for name, diff in _SCENARIO_DIFFS.items():
        params = copy.deepcopy(PHYSICS)
        params.update(copy.deepcopy(diff))
        out[name] = params
    return out


#: scenario name -> full parameter dict (JSON-serialisable); do not mutate, copy instead
SCENARIOS: dict[str, dict] = _build()


def scenario_params(scenario: str | dict, **overrides) -> dict:
    """Full parameters of a scenario (a name or a dict) with ``overrides`` applied.

    Raises
    ------
    ValueError
        For an unknown scenario name or an unknown parameter (the message lists the valid ones).
    """
    if isinstance(scenario, str):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose one of "
                             f"{', '.join(sorted(SCENARIOS))}")
        params = copy.deepcopy(SCENARIOS[scenario])
        params["scenario"] = scenario
    else:
        params = copy.deepcopy(PHYSICS)
        params.update(copy.deepcopy(dict(scenario)))
        params.setdefault("scenario", "custom")
    unknown = [k for k in overrides if k not in params]
    if unknown:
        raise ValueError(f"unknown simulation parameter(s) {unknown}; valid names: "
                         f"{', '.join(sorted(params))}")
    params.update(copy.deepcopy(overrides))
    return params
