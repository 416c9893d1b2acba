"""Two-layer models through the pipeline: stages, linking per layer, and the recording."""

import h5py
import numpy as np
import pandas as pd

from temstream.config import load_config
from temstream.pipeline.assemble import build_stages
from temstream.pipeline.runner import Runner
from temstream.pipeline.stages import LayeredInstances, LayeredLink
from temstream.record import RecorderSink, read_particles
from temstream.record.repair import open_recording
from temstream.stream.sources import MemorySource
from testkit import LayerLevelsSegmenter, moire_movie


def _record(tmp_path, n=5, size=96):
    frames, truth, _ = moire_movie(n, size=size)
    stages = build_stages(load_config(overrides=["instances.min_area=8"]),
                          LayerLevelsSegmenter())
    path = tmp_path / "moire.h5"
    sink = RecorderSink(path, labels_compression="blosc2-zstd")
    summary = Runner(MemorySource(frames, meta={"pixel_size_nm": 0.5}), **stages, sinks=[sink],
                     flow="lossless").run()
    return frames, truth, path, summary


def test_two_layer_models_get_layered_stages():
    stages = build_stages(load_config(), LayerLevelsSegmenter())
    assert isinstance(stages["instances"], LayeredInstances)
    assert isinstance(stages["link"], LayeredLink)


def test_the_recording_holds_both_layers_in_the_contract_layout(tmp_path):
    frames, truth, path, summary = _record(tmp_path)
    assert summary.processed == len(frames)
    with open_recording(path) as f:
        g = f["data/layer_labels"]
        planes = g["data"][()]
        assert planes.shape == (5, 2, 96, 96) and planes.dtype == np.uint32
        assert [g[f"dim{i}"].attrs["name"] for i in (1, 2, 3, 4)] == ["time", "layer", "y", "x"]
        assert g["dim2"][()].tolist() == [1.0, 2.0]
        view = f["data/labels/data"][()]
        assert view.shape == (5, 96, 96) and view.dtype == np.uint32
    for k in (0, 1):  # every pixel of each layer in its own plane, overlaps in both
        assert np.array_equal(planes[:, k] > 0, truth[:, k] > 0)
    assert ((planes[:, 0] > 0) & (planes[:, 1] > 0)).any()
    df = read_particles(path)
    assert set(df.layer) == {1, 2}
    for (frame, layer), g in df.groupby(["frame", "layer"]):
        ids = set(np.unique(planes[frame, layer - 1]).tolist()) - {0}
        assert set(g.label) == ids, "label = the particle's id in its layer's plane"
    # the single-plane view is a valid label image whose ids are those of the table
    for frame, g in df.groupby("frame"):
        assert set(np.unique(view[frame]).tolist()) - {0} <= set(g.label)
    # one track per particle of each layer, ids unique across layers
    tracks = df.groupby("particle").layer.nunique()
    assert (tracks == 1).all()
    assert df.groupby("particle").size().median() == len(frames)


def test_the_layer_analysis_reads_the_recording(tmp_path):
    from temstream.tracking import analysis as ta

    frames, _, path, _ = _record(tmp_path, n=4, size=128)
    df = read_particles(path)
    twist = ta.twist_angle(df)
    assert len(twist) == 4 and np.allclose(np.abs(twist), 9.0, atol=0.5)
    vib = ta.site_vibration(df, min_frames=3)
    assert set(vib.layer) == {1, 2} and vib.rms.median() < 1.0


def test_layered_link_gives_unique_ids_and_links_each_layer_alone():
    link = LayeredLink(n_layers=2)
    t0 = {"x": np.array([10.0, 10.5, 50.0]), "y": np.array([10.0, 10.5, 50.0]),
          "layer": np.array([1, 2, 1], np.int16), "angle": np.zeros(3)}
    ids0 = link(dict(t0))
    assert len(set(ids0.tolist())) == 3
    # the next frame: the particles swap rows; each keeps its own layer's track
    t1 = {k: v[[1, 0, 2]] for k, v in t0.items()}
    ids1 = link(dict(t1))
    assert ids1.tolist() == ids0[[1, 0, 2]].tolist()
    link.reset()
    ids2 = link(dict(t0))
    assert not set(ids2.tolist()) & set(ids0.tolist()), "a new series starts new tracks"


def test_single_layer_models_keep_todays_layout(tmp_path):
    from testkit import disks_movie

    frames, _ = disks_movie(3)
    config = load_config(overrides={"segment": {"model": "classical"}})
    from temstream.pipeline.assemble import load_segmenter_from_config

    stages = build_stages(config, load_segmenter_from_config(config))
    path = tmp_path / "one.h5"
    Runner(MemorySource(frames), **stages, sinks=[RecorderSink(path)], flow="lossless").run()
    with h5py.File(path, "r") as f:
        assert "layer_labels" not in f["data"]
    assert set(pd.unique(read_particles(path).layer)) == {0}


def test_export_layers_writes_two_movies_tables_and_a_figure(tmp_path, capsys):
    import tifffile

    from temstream.cli import main

    frames, truth, path, _ = _record(tmp_path, n=3)
    out = tmp_path / "layers"
    assert main(["export", "--layers", str(path), "--out", str(out)]) == 0
    for k, name in enumerate("AB"):
        labels = tifffile.imread(out / f"layer_{name}_labels.tif")
        assert labels.shape == (3, 96, 96) and labels.dtype == np.uint32
        assert np.array_equal(labels > 0, truth[:, k] > 0)
        rgb = tifffile.imread(out / f"layer_{name}_overlay.tif")
        assert rgb.shape == (3, 96, 96, 3) and rgb.dtype == np.uint8
        table = pd.read_csv(out / f"particles_layer_{name}.csv")
        assert set(table.layer) == {k + 1} and set(table.frame) == {0, 1, 2}
    assert (out / "figure.png").stat().st_size > 1000
    assert "figure.png" in capsys.readouterr().out


def test_export_layers_of_a_one_layer_recording_says_why_not(tmp_path):
    from temstream.cli.layers_export import export_layers
    from testkit import disks_movie
    from temstream.record import write_movie

    frames, _ = disks_movie(2)
    path = write_movie(tmp_path / "one.h5", frames, np.zeros(frames.shape, np.int32),
                       pd.DataFrame({"frame": [0], "x": [1.0], "y": [1.0]}))
    import pytest

    with pytest.raises(ValueError, match="two-layer"):
        export_layers(path, tmp_path / "out")
