"""The napari plugin: the reader's layers, and the widget, with napari's own viewer fixture.

With OpenGL (a display, e.g. ``xvfb-run``) the tests use ``make_napari_viewer`` (a full
``napari.Viewer``); without it (CI's offscreen Qt has no OpenGL context) they use napari's Qt-free
``ViewerModel``, which has the same layers and ``open(path, plugin=...)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")
npe2 = pytest.importorskip("npe2")

import temstream.napari  # noqa: E402
from temstream.cli import main  # noqa: E402


def _has_opengl() -> bool:
    from qtpy import QtGui, QtWidgets

    QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    return QtGui.QOpenGLContext().create()


@pytest.fixture(scope="module", autouse=True)
def plugin():
    """The plugin as napari finds it: the installed entry point, else its manifest."""
    pm = npe2.PluginManager.instance()
    pm.discover()
    if "temstream" not in pm:  # a checkout on PYTHONPATH, not pip-installed
        pm.register(npe2.PluginManifest.from_file(
            Path(temstream.napari.__file__).with_name("napari.yaml")))
    return pm.get_manifest("temstream")


@pytest.fixture
def viewer(request, qapp):
    if _has_opengl():
        return request.getfixturevalue("make_napari_viewer")()
    from napari.components import ViewerModel

    return ViewerModel()


@pytest.fixture(scope="module")
def layered(tmp_path_factory):
    from testkit import layered_recording

    return layered_recording(tmp_path_factory.mktemp("nap") / "bi.h5")


def test_manifest_names_the_reader_and_the_widget(plugin):
    assert plugin.name == "temstream"
    assert [r.command for r in plugin.contributions.readers] == ["temstream.get_reader"]
    assert [w.display_name for w in plugin.contributions.widgets] == ["Segment and track"]


def test_reader_opens_frames_labels_per_layer_tracks_and_points(viewer, layered):
    from temstream.record.lazy import H5Plane, H5Stack

    path, df = layered
    layers = viewer.open(path, plugin="temstream")
    names = [layer.name for layer in layers]
    assert names == ["bi frames", "bi labels", "bi layer A", "bi layer B", "bi tracks",
                     "bi particles"]
    frames, labels, a, b, tracks, points = layers
    assert isinstance(frames, napari.layers.Image) and isinstance(frames.data, H5Stack)
    assert frames.data.shape == (30, 96, 96) and tuple(frames.scale) == (1.0, 0.5, 0.5)
    assert isinstance(labels, napari.layers.Labels) and labels.data.shape == (30, 96, 96)
    assert isinstance(a, napari.layers.Labels) and isinstance(a.data, H5Plane)
    assert a.data.shape == (30, 96, 96)
    assert len(np.unique(np.asarray(a.data[7]))) == 4 and len(np.unique(np.asarray(b.data[7]))) == 4
    assert isinstance(tracks, napari.layers.Tracks)
    assert sorted(np.unique(tracks.data[:, 0]).astype(int)) == list(range(6))
    assert len(tracks.data) == len(df) == 180
    assert isinstance(points, napari.layers.Points) and len(points.data) == 180
    assert set(points.features.columns) >= {"frame", "particle", "x", "y", "area", "layer"}
    row = np.flatnonzero((points.features["frame"] == 12) & (points.features["particle"] == 4))[0]
    expected = df[(df.frame == 12) & (df.particle == 4)].iloc[0]
    np.testing.assert_allclose(points.data[row], [12, expected.y, expected.x])


def test_reader_skips_what_is_not_a_recording(tmp_path, layered):
    import h5py

    from temstream.napari import get_reader

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    assert get_reader(str(other)) is None
    assert get_reader(str(tmp_path / "movie.tif")) is None
    assert get_reader(str(layered[0])) is not None
    assert get_reader([str(layered[0]), str(other)]) is None


def test_processed_recording_without_tracks_layers_per_plane(viewer, tmp_path):
    from testkit import disks_movie

    frames, _ = disks_movie(n_frames=10, size=64, seed=1)
    np.save(tmp_path / "m.npy", frames)
    assert main(["process", str(tmp_path / "m.npy"), "--out", str(tmp_path / "m.h5"),
                 "--model", "classical", "--no-progress"]) == 0
    layers = viewer.open(tmp_path / "m.h5", plugin="temstream")
    assert [type(x).__name__ for x in layers] == ["Image", "Labels", "Tracks", "Points"]
    np.testing.assert_array_equal(np.asarray(layers[0].data[3]), frames[3])


def test_widget_segments_and_tracks_an_image_layer_like_process(viewer, tmp_path, qapp):
    import h5py

    from temstream.napari._widget import segment_layer, segment_widget
    from testkit import disks_movie

    frames, _ = disks_movie(n_frames=10, size=64, seed=2)
    image = viewer.add_image(frames, name="movie")
    out = segment_layer(image, "classical", search_range=10.0, memory=3)
    assert [kind for *_, kind in out] == ["labels", "tracks", "points"]
    for data, kwargs, kind in out:
        viewer._add_layer_from_data(data, kwargs, kind)
    assert [x.name for x in viewer.layers] == ["movie", "movie classical labels",
                                               "movie classical tracks",
                                               "movie classical particles"]
    np.save(tmp_path / "m.npy", frames)
    assert main(["process", str(tmp_path / "m.npy"), "--out", str(tmp_path / "m.h5"),
                 "--model", "classical", "--no-progress", "tracking.memory=3"]) == 0
    with h5py.File(tmp_path / "m.h5", "r") as f:
        import hdf5plugin  # noqa: F401

        recorded = f["data/labels/data"][()]
        table = f["particles"][()]
    np.testing.assert_array_equal(viewer.layers[1].data, recorded)
    np.testing.assert_array_equal(viewer.layers[2].data[:, 0],
                                  np.sort(table["particle"], kind="stable"))
    # the magicgui widget itself, as the manifest names it (what the dock widget shows)
    from npe2.manifest.utils import import_python_name

    command = npe2.PluginManager.instance().get_command("temstream.segment_widget")
    assert import_python_name(command.python_name) is segment_widget
    if isinstance(viewer, napari.Viewer):  # with OpenGL: docked in the window
        _, docked = viewer.window.add_plugin_dock_widget("temstream", "Segment and track")
        assert docked.call_button.text == "Segment and track"
    widget = segment_widget()
    assert widget.model.choices == ("classical", "default", "bilayer")
    two_d = viewer.add_image(frames[0], name="one")
    result = widget(image=two_d, model="classical", current_frame_only=False)
    assert [kind for *_, kind in result] == ["labels", "points"] and result[0][0].ndim == 2
