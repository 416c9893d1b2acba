"""The pipeline's stages from a configuration: the segmenter it names and the stages around it.

:func:`build_stages` is what a live run (:class:`~temstream.pipeline.runner.Runner`) and an
evaluation (:mod:`temstream.evaluation`) both use, so a score is the score of the stages that
run live.
"""

from __future__ import annotations

from temstream.config import Config, ConfigError
from temstream.pipeline.stages import (Denoise, Instances, LayeredInstances, LayeredLink, Link,
                                       Preprocess, Register)


def load_denoiser_from_config(config: Config):
    """The denoise stage that ``[denoise]`` asks for, or None (``denoise.model = ""``)."""
    if not config.denoise.model:
        return None
    from temstream.models.checkpoints import CheckpointError
    from temstream.models.denoise import load_denoiser

    try:
        den = load_denoiser(config.denoise.model, threads=config.denoise.threads)
    except CheckpointError as exc:
        raise ConfigError(f"config key 'denoise.model': {exc}") from None
    return Denoise(den, apply=config.denoise.apply)


def load_segmenter_from_config(config: Config):
    """The segmenter named by ``segment.model`` (classical options from ``[classical]``)."""
    from temstream.models import load_segmenter

    c = config.classical
    threshold = config.segment.threshold or None
    if config.segment.model == "classical":
        if config.segment.tta != 1:
            raise ConfigError(f"config key 'segment.tta': {config.segment.tta} applies to "
                              "U-Nets; the classical model takes 1")
        if config.segment.compile:
            raise ConfigError("config key 'segment.compile': applies to U-Nets, not the "
                              "classical model")
        options = dict(sigma=c.sigma, method=c.method, polarity=c.polarity,
                       opening_radius=c.opening_radius, min_area=c.min_area,
                       fill_holes=c.fill_holes, background_scale=c.background_scale)
    else:
        options = dict(tta=config.segment.tta)
        if config.segment.threads:
            options["threads"] = config.segment.threads
        if config.segment.compile:
            from temstream.models.backends import choose_backend, resolve_device

            if choose_backend(config.segment.backend,
                              resolve_device(config.segment.device)) != "torch":
                raise ConfigError("config key 'segment.compile': applies to the torch backend, "
                                  f"not {config.segment.backend!r} here")
            options["compile"] = True
    return load_segmenter(config.segment.model, backend=config.segment.backend,
                          device=config.segment.device, threshold=threshold, **options)


def build_stages(config: Config, segmenter, denoise=None) -> dict:
    """The pipeline's stages around ``segmenter``, by name, from the configuration: what
    :class:`Runner` runs and what :mod:`temstream.evaluation` scores (``denoise``: a
    :class:`Denoise` stage already loaded, else the one ``[denoise]`` names, if any)."""
    denoise = denoise or load_denoiser_from_config(config)
    threshold = config.segment.threshold or segmenter.threshold
    settings = config.instances
    if settings.outline == "expected-dice" and not segmenter.calibrated:
        settings = settings.replace(outline="threshold")  # the rule needs probabilities
    from temstream.tracking.layers import is_layered

    if is_layered(segmenter.classes):  # a two-layer model: one plane and one linker per layer
        n_layers = sum(c.startswith("layer_") for c in segmenter.classes)
        return {"preprocess": Preprocess(median=config.preprocess.median),
                "denoise": denoise, "segment": segmenter,
                "instances": LayeredInstances(settings, classes=segmenter.classes,
                                              threshold=threshold),
                "register": Register(config.register),
                "link": LayeredLink(config.tracking, n_fold=config.instances.n_fold,
                                    n_layers=n_layers)}
    return {"preprocess": Preprocess(median=config.preprocess.median),
            "denoise": denoise, "segment": segmenter,
            "instances": Instances(settings, classes=segmenter.classes, threshold=threshold),
            "register": Register(config.register),
            "link": Link(config.tracking, n_fold=config.instances.n_fold)}
