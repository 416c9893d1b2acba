"""The configuration schema: frozen dataclasses, validated on load.

A configuration is built from the defaults below, then a TOML preset, then ``key=value``
overrides from the command line (``tracking.search_range=12``). Any unknown key or value of
the wrong type raises :class:`ConfigError` with a one-line message that names the key.

Every section validates itself when it is made (``InstancesConfig(min_area=-1)`` raises), so
a stage that takes a section object, such as the instance stage with :class:`InstancesConfig`,
gets valid settings however they were made; :meth:`Section.replace` changes some keys with the
same checks. This module is the one place where each setting and its default are spelled.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


#: how the instance stage draws a particle's outline (``instances.outline``)
OUTLINE_RULES = ("expected-dice", "threshold", "half-contrast", "edge-model")


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range (one-line message)."""


def _choice(default: Any, *choices: Any) -> Any:
    return field(default=default, metadata={"choices": choices})


def _range(default: float, lo: float | None = None, hi: float | None = None, *,
           above: bool = False, below: bool = False) -> Any:
    """A number in ``[lo, hi]``; ``above``/``below``: strictly above ``lo`` / below ``hi``."""
    return field(default=default, metadata={"range": (lo, hi), "above": above,
                                            "below": below})


class Section:
    """A section of the configuration: a frozen dataclass that validates itself.

    Subclasses set ``section`` to their key in :class:`Config`, which error messages name
    (``config key 'instances.min_area': -1 is outside [0, ]``).
    """

    section: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            key = f"{self.section}.{f.name}" if self.section else f.name
            value = _check_value(key, f, hints[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)

    def replace(self, **changes: Any) -> Any:
        """A copy with some keys changed, validated like a configuration file.

        Raises
        ------
        ConfigError
            For an unknown key or a value of the wrong type or out of range, naming it.
        """
        known = {f.name for f in dataclasses.fields(self)}
        for key in changes:
            if key not in known:
                raise ConfigError(f"unknown config key '{self.section}.{key}' (known here: "
                                  f"{', '.join(sorted(known))})")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SourceConfig(Section):
    """Where frames come from."""

    section = "source"

    connect: str = "tcp://127.0.0.1:5555"
    protocol: str = _choice("native", "native", "dectris-v2", "dectris-v1")
    socket: str = _choice("pull", "pull", "sub")
    bind: bool = False
    rcvhwm: int = _range(64, 1, None)
    idle_timeout_s: float = _range(0.0, 0.0, None)  # 0 = wait for frames forever
    decode_threads: int = _range(1, 0, 64)  # decompress DECTRIS frames off the receive thread


@dataclass(frozen=True)
class PipelineConfig(Section):
    """How the runner moves frames between stages."""

    section = "pipeline"

    flow: str = _choice("live", "live", "lossless")
    queue_size: int = _range(4, 1, 100000)
    frames: int = _range(0, 0, None)  # 0 = until the end of the series / Ctrl-C
    stop_at_series_end: bool = True


@dataclass(frozen=True)
class PreprocessConfig(Section):
    """Conversion of raw counts into the model input."""

    section = "preprocess"

    median: bool = False  # 3x3 median prefilter (Groschner et al.)


@dataclass(frozen=True)
class DenoiseConfig(Section):
    """Low-dose denoising before segmentation (docs/denoise.md): each frame with the frames
    before it in its series, causally."""

    section = "denoise"

    model: str = ""  # "" = off; "denoise" (shipped) or a checkpoint of `train --preset denoise`
    # segment: the denoised frame is what the segmenter and the instances' contrast tests see
    # (and the display shows); display: only the dashboard and the results feed's frames
    # show it (segmentation on raw). Registration and the recording take the raw frame.
    apply: str = _choice("segment", "segment", "display")
    threads: int = _range(0, 0, 1024)  # torch threads on a CPU (0 = the runtime's default)


@dataclass(frozen=True)
class SegmentConfig(Section):
    """Which segmenter runs and where."""

    section = "segment"

    # classical | default | bilayer | path to a checkpoint; the U-Net "default" everywhere
    # (demo, run, process, replay): it keeps up on a 2-core CPU at 512² (24 frames/s,
    # docs/models.md) and is what every accuracy figure measures
    model: str = "default"
    backend: str = _choice("auto", "auto", "torch", "onnxruntime", "tensorrt")
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threshold: float = _range(0.0, 0.0, 1.0, below=True)  # 0 = take it from the model card
    tta: int = _choice(1, 1, 2, 4, 8)  # U-Nets: average over this many rotations/mirrors
    compile: bool = False  # torch backend: torch.compile (faster; first frame takes seconds)
    threads: int = _range(0, 0, 1024)  # U-Nets on a CPU: threads (0 = the runtime's default)


@dataclass(frozen=True)
class ClassicalConfig(Section):
    """The classical baseline segmenter (smoothing + automatic threshold + morphology)."""

    section = "classical"

    sigma: float = _range(1.5, 0.0, 50.0)
    method: str = _choice("otsu", "sigma", "otsu", "li", "triangle", "yen")
    polarity: str = _choice("dark", "dark", "bright")
    opening_radius: int = _range(1, 0, 20)
    min_area: int = _range(16, 0, None)
    fill_holes: bool = True
    background_scale: int = _range(256, 0, 100000)  # px; 0 = no flattening


@dataclass(frozen=True)
class InstancesConfig(Section):
    """The instance stage: label image and per-particle properties from the class probabilities.

    Particles are found where ``1 - P(background)`` exceeds the segmenter's threshold; the
    ``outline`` rule then decides how far each one reaches (``temstream.tracking.outlines``).
    """

    section = "instances"

    # "expected-dice": each frame's outlines at the threshold (>= the card's) that maximises the
    # Dice its own probabilities expect; "threshold": at the card's threshold; "half-contrast":
    # redrawn from the frame at half of each particle's contrast (the hand-drawn convention)
    outline: str = _choice("expected-dice", *OUTLINE_RULES)
    min_area: int = _range(24, 0, None)  # px; smaller instances are noise
    min_score: float = _range(0.65, 0.0, 1.0)  # instances with a lower mean P(foreground) are dropped
    # a particle must stand out of its local background in the frame by this many standard
    # errors of the frame's own noise at the particle's size: nothing is found where the frame
    # shows only noise or mottle (0 = no test)
    min_contrast_z: float = _range(5.0, 0.0, None)
    # outline = "half-contrast": an instance below min_score is kept when its contrast in the
    # frame is at least this many standard errors of its background's noise (Rose's criterion,
    # 5; 0 = never)
    faint_contrast_z: float = _range(5.0, 0.0, None)
    # outline = "half-contrast": particles the network saw only below its threshold are looked
    # for where 1 - P(background) exceeds this, and kept when they pass the same test (0 = never)
    faint_threshold: float = _range(0.0, 0.0, 1.0)
    seed_threshold: float = _range(0.85, 0.0, 1.0)  # boundary-class models: P(particle) of seeds
    min_seed_area: int = _range(10, 0, None)  # px; smaller seeds do not make a particle
    # boundary-class models: two touching particles are fragments of one and merge when their
    # border's mean 1 - P(particle) is below merge_below (0 = never) and the border is more
    # than merge_share of the smaller one's outline
    merge_below: float = _range(0.5, 0.0, 1.0)
    merge_share: float = _range(0.2, 0.0, 1.0)
    n_fold: int = _range(4, 1, 12)  # orientation symmetry: 4 cubes, 3 triangles, 2 rods


@dataclass(frozen=True)
class RegisterConfig(Section):
    """Registration before linking: the stage's drift and jumps, and the quality of each frame
    (``temstream.tracking.registration``)."""

    section = "register"

    enabled: bool = True  # measure each frame's shift; link in registered coordinates
    particles: bool = True  # also measure the shift from the particles' displacements
    quality: bool = True  # flag blank, blurred and saturated frames (the linker bridges them)
    max_side: int = _range(256, 16, 8192)  # frames are reduced to this for registration, px
    jump_px: float = _range(4.0, 0.1, None)  # a step this far from the recent ones is a jump


@dataclass(frozen=True)
class TrackingConfig(Section):
    """The online linker."""

    section = "tracking"

    # px; 0 = automatic: from the displacements between consecutive frames, updated as the
    # movie goes on (temstream.tracking.search_range)
    search_range: float = _range(0.0, 0.0, None)
    # frames a particle may be missing where it could have been seen (frames never processed,
    # bad frames and frames in which it was out of view do not count)
    memory: int = _range(10, 0, None)
    predict: bool = False  # velocity predictor


@dataclass(frozen=True)
class RecordConfig(Section):
    """The HDF5 recorder."""

    section = "record"

    raw_frames: bool = True
    frames_compression: str = _choice(
        "none", "none", "blosc2-lz4", "blosc2-zstd", "bitshuffle-lz4", "gzip"
    )
    # gzip: filters every HDF5 build has, so HyperSpy, rosettasciio, ncempy and plain h5py
    # open the labels with no extra import (blosc2/bitshuffle need `import hdf5plugin`)
    labels_compression: str = _choice(
        "gzip", "none", "blosc2-lz4", "blosc2-zstd", "bitshuffle-lz4", "gzip"
    )
    # a SIGKILL loses at most this plus the pipeline's latency (table rows: one flush more)
    flush_interval_s: float = _range(0.25, 0.01, 60.0)
    queue_size: int = _range(64, 1, 100000)
    swmr: bool = False  # readable while growing; after a crash open with swmr=True
    compress_threads: int = _range(2, 1, 64)


@dataclass(frozen=True)
class ResultsConfig(Section):
    """The results feed for closed-loop control (ZeroMQ PUB)."""

    section = "results"

    publish: str = ""  # endpoint to bind, e.g. tcp://127.0.0.1:5556; empty = off
    labels: bool = False  # append the label image to each message
    frames: bool = False  # append the frame, binned, at most every frame_interval_s
    frame_interval_s: float = _range(0.2, 0.0, None)  # least time between two frames sent
    frame_max_side: int = _range(512, 16, 8192)  # bin frames by 2, 3, ... until they fit
    count_threshold: int = _range(0, 0, None)  # event when the particle count crosses it; 0 = off
    leave_after: int = _range(3, 1, None)  # frames without a track before "track left"
    grow_ratio: float = _range(1.5, 1.0, None)  # event when area >= ratio x first area
    shrink_ratio: float = _range(0.67, 0.0, 1.0)  # event when area <= ratio x first area


@dataclass(frozen=True)
class DemoConfig(Section):
    """The simulated detector used by ``temstream demo``."""

    section = "demo"

    scenario: str = "dispersed"
    model: str = "default"  # the demo's segmenter (``--model`` wins)
    size: int = _range(256, 32, 8192)
    fps: float = _range(30.0, 0.1, 100000.0)
    seed: int = 0


@dataclass(frozen=True)
class GuiConfig(Section):
    """The dashboard."""

    section = "gui"

    fps: float = _range(30.0, 1.0, 240.0)
    tail_length: int = _range(30, 0, 10000)


@dataclass(frozen=True)
class Config:
    """The whole configuration of a temstream run."""

    source: SourceConfig = field(default_factory=SourceConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    denoise: DenoiseConfig = field(default_factory=DenoiseConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    classical: ClassicalConfig = field(default_factory=ClassicalConfig)
    instances: InstancesConfig = field(default_factory=InstancesConfig)
    register: RegisterConfig = field(default_factory=RegisterConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    results: ResultsConfig = field(default_factory=ResultsConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    gui: GuiConfig = field(default_factory=GuiConfig)

    def replace(self, **sections: dict[str, Any]) -> Config:
        """Return a copy with some keys changed: ``cfg.replace(tracking={"memory": 2})``."""
        data = dataclasses.asdict(self)
        _merge(data, sections, "")
        return _build(Config, data, "")


def _type_name(tp: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _check_value(key: str, f: dataclasses.Field, tp: Any, value: Any) -> Any:
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):  # NaN passes every comparison: never a setting
            raise ConfigError(f"config key '{key}': {value!r} is not a finite number")
    elif tp is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - schema only uses the types above
        raise TypeError(f"unsupported schema type {tp!r} for {key}")
    if not ok:
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(
            f"config key '{key}': {value!r} is not one of {', '.join(map(repr, choices))}"
        )
    lo, hi = f.metadata.get("range", (None, None))
    above, below = f.metadata.get("above", False), f.metadata.get("below", False)
    if ((lo is not None and (value <= lo if above else value < lo))
            or (hi is not None and (value >= hi if below else value > hi))):
        bounds = (f"{'(' if above else '['}{'' if lo is None else lo}, "
                  f"{'' if hi is None else hi}{')' if below else ']'}")
        raise ConfigError(f"config key '{key}': {value!r} is outside {bounds}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.')}': expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown config key '{prefix}{key}' (known here: {known})")
    kwargs = {}
    for name in fields:
        if name in data:
            tp = hints[name]
            nested = dataclasses.is_dataclass(tp)
            kwargs[name] = _build(tp, data[name], f"{prefix}{name}.") if nested else data[name]
    return cls(**kwargs)  # each section checks its values (Section.__post_init__)


def _merge(base: dict, update: dict, prefix: str) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, f"{prefix}{key}.")
        else:
            base[key] = value


def parse_overrides(items: typing.Iterable[str]) -> dict[str, Any]:
    """Turn ``["tracking.search_range=12", "segment.model=default"]`` into a nested dict.

    Values are read as TOML (``12`` is an integer, ``true`` a boolean, ``"a b"`` a string);
    anything that is not valid TOML is taken as a plain string.
    """
    nested: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key '{key}': conflicts with another override")
        node[parts[-1]] = value
    return nested


def preset_names() -> list[str]:
    """Names of the presets that ship with temstream (``live``, ``replay``, ``demo``...)."""
    from importlib.resources import files

    return sorted(p.name.removesuffix(".toml") for p in files(__package__).joinpath(
        "presets").iterdir() if p.name.endswith(".toml"))


def resolve_preset(name: str | Path) -> Path:
    """Find a preset: a path to a TOML file, or the name of a preset shipped with temstream.

    A file of that name wins over a shipped preset, so ``--config live`` reads ``./live``
    only where such a file exists; ``--config live.toml`` a file, else the shipped one.
    """
    from importlib.resources import as_file, files

    path = Path(name)
    if path.is_file():
        return path
    stem = path.name.removesuffix(".toml")
    if path.parent == Path(".") and stem in preset_names():
        with as_file(files(__package__).joinpath("presets", f"{stem}.toml")) as found:
            return Path(found)
    raise ConfigError(f"config file not found: {name} (shipped presets: "
                      f"{', '.join(preset_names())})")


def load_config(
    path: str | Path | None = None, overrides: typing.Iterable[str] | dict = ()
) -> Config:
    """Load and validate a configuration.

    Parameters
    ----------
    path : str or Path, optional
        A TOML preset: a file path, or the name of a shipped preset (``live``).
    overrides : iterable of str or dict
        ``section.key=value`` strings (or an already nested dict) applied last.

    Returns
    -------
    Config
        The validated, frozen configuration.

    Raises
    ------
    ConfigError
        With a one-line message naming the offending key.
    """
    data = dataclasses.asdict(Config())
    if path is not None:
        preset = resolve_preset(path)
        try:
            _merge(data, tomllib.loads(preset.read_text()), "")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {preset}: {exc}") from None
    if not isinstance(overrides, dict):
        overrides = parse_overrides(overrides)
    _merge(data, overrides, "")
    return _build(Config, data, "")


def config_to_toml(config: Config) -> str:
    """The configuration as TOML text (written into every recording)."""
    import tomli_w

    return tomli_w.dumps(dataclasses.asdict(config))

