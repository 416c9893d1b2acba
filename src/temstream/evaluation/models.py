"""The models an evaluation compares: each one a segmenter with the pipeline's own stages.

A model is named as on the command line, ``NAME[@KEY=VALUE...]``: ``default``, ``runs/x``,
``default@tta=4``, ``default@instances.outline=half-contrast``. Keys without a section are
``[segment]`` keys; ``instances.KEY`` sets the instance stage of that model alone, so a
setting can be compared with itself switched off in one paired run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from temstream.config import Config, ConfigError, parse_overrides
from temstream.pipeline.assemble import build_stages, load_segmenter_from_config


@dataclass
class Model:
    """A segmenter and the stages around it, as a live run would build them.

    Attributes
    ----------
    name : str
        How it is shown in the tables (a checkpoint folder's name, settings after @ kept).
    segmenter : Segmenter
    preprocess : callable
    instances : temstream.pipeline.stages.Instances
    config : Config, optional
        The configuration the stages came from: :meth:`tracks` builds the register and link
        stages of a live run from it.
    """

    name: str
    segmenter: Any
    preprocess: Any
    instances: Any
    config: Any = None

    @property
    def threshold(self) -> float:
        return self.instances.threshold

    @property
    def outline(self) -> str:
        return self.instances.settings.outline

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Class probabilities of raw frames (N, H, W) -> (N, C, H, W)."""
        return self.segmenter.predict_batch(np.stack([self.preprocess(f) for f in frames]))

    def labels(self, probabilities: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """The instance labels (H, W) the pipeline would record for one frame."""
        return self.instances(probabilities, frame)[0]

    def tracks(self, frames: np.ndarray, tables: list[dict]):
        """The tracks a live run would record from these frames and their particle tables:
        fresh register and link stages (as :func:`~temstream.pipeline.assemble.build_stages`
        makes them) over the frames in order.

        Returns
        -------
        pandas.DataFrame
            ``frame``, ``particle`` (-1: not linked), ``x``, ``y`` (detector px).
        """
        import pandas as pd

        from temstream.config import load_config
        from temstream.pipeline.stages import Link, Register

        config = self.config if self.config is not None else load_config()
        register = Register(config.register)
        link = Link(config.tracking, n_fold=config.instances.n_fold)
        rows = []
        for i, (frame, table) in enumerate(zip(frames, tables)):
            table = dict(table)
            reg = register(frame, table, i)
            h, w = frame.shape
            ids = link(table, i, bridge=reg.quality,
                       view=(-reg.shift_x, -reg.shift_y, w - reg.shift_x, h - reg.shift_y))
            rows.append(pd.DataFrame({"frame": i, "particle": ids,
                                      "x": np.asarray(table["x"], float),
                                      "y": np.asarray(table["y"], float)}))
        return pd.concat(rows, ignore_index=True)

    def describe(self) -> str:
        """Threshold and outline rule, for report headers."""
        note = {"expected-dice": " (outlines at each frame's expected-Dice threshold, never "
                                 "below it)",
                "half-contrast": " (outlines redrawn from the frame at half of each "
                                 "particle's contrast)"}.get(self.outline, "")
        return f"{self.name} {self.threshold:.2f}{note}"


def display_name(name: str) -> str:
    """A checkpoint folder's name, settings after @ kept: ``runs/r4@tta=4`` -> ``r4@tta=4``."""
    model, sep, settings = name.partition("@")
    return (Path(model).name if Path(model).exists() else model) + sep + settings


def load_model(name: str, config: Config, *, backend: str | None = None,
               tta: int | None = None) -> Model:
    """The model ``NAME[@KEY=VALUE...]`` under ``config`` (see the module notes).

    ``backend`` and ``tta`` win over ``[segment]``; the settings after @ win over both. The
    classical baseline keeps its own threshold and one pass.
    """
    model, *settings = name.split("@")
    classical = model == "classical"
    seg = replace(config.segment, model=model, backend=backend or config.segment.backend,
                  tta=1 if classical else (tta or config.segment.tta),
                  threshold=0.0 if classical else config.segment.threshold,
                  compile=config.segment.compile and not classical)
    config = replace(config, segment=seg)
    if settings:
        config = config.replace(**parse_overrides(
            s if s.startswith("instances.") else f"segment.{s}" for s in settings))
    segmenter = load_segmenter_from_config(config)
    stages = build_stages(config, segmenter)
    return Model(display_name(name), segmenter, stages["preprocess"], stages["instances"],
                 config)


def load_models(names, config: Config, **kwargs) -> dict[str, Model]:
    """``classical`` first, then ``names`` (duplicates once), by display name."""
    names = list(dict.fromkeys(["classical", *names]))
    models = {}
    for n in names:
        m = load_model(n, config, **kwargs)
        if m.name in models:
            raise ConfigError(f"two models are shown as {m.name!r}; rename one folder")
        models[m.name] = m
    return models
