"""The napari widget: run a temstream model, the instances and the linker on an image layer."""

from __future__ import annotations

import napari
from magicgui import magic_factory

MODELS = ["classical", "default", "bilayer"]


def segment_layer(image: napari.layers.Image, model: str = "classical",
                  search_range: float = 10.0, memory: int = 3,
                  current_frame_only: bool = False, viewer=None) -> list[tuple]:
    """Run the temstream stages on an image layer; returns the layers to add.

    Parameters
    ----------
    image : napari.layers.Image
        A 2-D image or a (T, H, W) stack (grey).
    model : str
        ``classical``, ``default``, ``bilayer`` or a checkpoint path.
    search_range, memory
        Linking: largest step (px) and frames a track may skip.
    current_frame_only : bool
        Only the frame shown (a quick look at a long stack).
    viewer : napari.Viewer, optional
        Tells the frame shown.

    Returns
    -------
    list of (data, dict, str)
        Labels (T, H, W), Tracks and Points (see :func:`~temstream.napari._reader.particle_layers`).
    """
    import numpy as np

    from temstream.config import Config
    from temstream.napari._reader import particle_layers
    from temstream.pipeline.inmemory import run_on_frames

    if image is None:
        raise ValueError("open an image layer first")
    if image.rgb or image.ndim not in (2, 3):
        raise ValueError(f"{image.name}: a grey 2-D image or a (T, H, W) stack is needed, not "
                         f"{image.ndim}-D{' RGB' if image.rgb else ''}")
    data = image.data
    start = 0
    if image.ndim == 2:
        frames = np.asarray(data)[None]
    elif current_frame_only:
        start = int(viewer.dims.current_step[0]) if viewer is not None else 0
        frames = np.asarray(data[start])[None]
    else:
        frames = data
    config = Config().replace(segment={"model": model},
                              tracking={"search_range": float(search_range),
                                        "memory": int(memory)})
    labels, df, _ = run_on_frames(frames, config)
    scale = tuple(image.scale[-3:]) if image.ndim == 3 else (1.0,) + tuple(image.scale)
    meta = {"temstream_model": model, "source_layer": image.name}
    name = f"{image.name} {model}"
    if image.ndim == 2:
        out = [(labels[0], {"name": f"{name} labels", "scale": scale[1:], "opacity": 0.45,
                            "metadata": meta}, "labels")]
        df = df.assign(t=0)
        return out + [(d[:, 1:] if kind == "points" else d, {**kw, "scale": scale[1:]}, kind)
                      for d, kw, kind in particle_layers(df, name, scale, meta, tracks=False)]
    if current_frame_only:
        full = np.zeros((image.data.shape[0],) + labels.shape[1:], labels.dtype)
        full[start] = labels[0]
        labels = full
    df = df.assign(t=df["frame"] + start) if len(df) else df.assign(t=[])
    return [(labels, {"name": f"{name} labels", "scale": scale, "opacity": 0.45,
                      "metadata": meta}, "labels")] + particle_layers(df, name, scale, meta)


@magic_factory(call_button="Segment and track",
               model={"choices": MODELS, "tooltip": "classical: no network; default, bilayer: "
                                                    "the shipped U-Nets"},
               search_range={"min": 1.0, "max": 200.0, "step": 1.0, "label": "search range (px)"},
               memory={"min": 0, "max": 50, "label": "memory (frames)"})
def segment_widget(image: napari.layers.Image, model: str = "classical",
                   search_range: float = 10.0, memory: int = 3,
                   current_frame_only: bool = False,
                   viewer: napari.Viewer = None) -> list[napari.types.LayerDataTuple]:
    """Segment and track the image layer with temstream; adds labels, tracks and particles."""
    return segment_layer(image, model, search_range, memory, current_frame_only, viewer)
