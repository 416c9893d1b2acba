"""``temstream report``: the tables and figures of a recording, as HTML and PDF."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from temstream.cli import main


def _not_blank(png: bytes) -> float:
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(a.std())


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    from testkit import disks_movie

    d = tmp_path_factory.mktemp("rep")
    frames, _ = disks_movie(n_frames=25, size=64, seed=3)
    np.save(d / "m.npy", frames)
    assert main(["process", str(d / "m.npy"), "--out", str(d / "m.h5"), "--model", "classical",
                 "--no-progress"]) == 0
    return d / "m.h5"


def test_report_of_a_processed_movie_has_every_figure_with_the_right_counts(processed, tmp_path):
    import temstream

    df = temstream.read_particles(processed)
    report = temstream.make_report(processed, tmp_path / "r.html")
    keys = [p.key for p in report.panels]
    assert keys == ["accounting", "counts", "sizes", "msd", "tracks"]
    for p in report.panels:
        assert _not_blank(p.png()) > 5, p.key
    counts = report.panel("counts").data["counts"]
    assert counts[0].to_dict() == df.groupby("frame").size().to_dict()
    assert report.panel("accounting").data == {"processed": 25, "dropped": 0}
    line = report.panel("counts").figure.axes[0].lines[0]
    np.testing.assert_array_equal(line.get_ydata(), df.groupby("frame").size().to_numpy())
    assert report.panel("tracks").data == {"frame": 12, "particles": 4}
    # the disks move one pixel per frame to the right: D is large, the exponent near 2
    assert report.panel("msd").data["fits"]["msd"][0]["alpha"] > 1.5
    text = (tmp_path / "r.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", text)
    assert len(images) == 5 and all(_not_blank(base64.b64decode(i)) > 5 for i in images)
    assert "classical" in text and "tracking.search_range" in text and "processed" in text


def test_report_cli_writes_a_pdf(processed, tmp_path, capsys):
    out = tmp_path / "r.pdf"
    assert main(["report", str(processed), "--out", str(out)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-" and out.stat().st_size > 10_000
    assert "5 figures" in capsys.readouterr().out


def test_report_of_a_two_layer_recording_has_per_layer_panels(tmp_path):
    from testkit import layered_recording

    import temstream

    path, df = layered_recording(tmp_path / "bi.h5")
    report = temstream.make_report(path, tmp_path / "bi.html")
    counts = report.panel("counts").data["counts"]
    assert list(counts.columns) == [0, 1, 2]
    assert (counts[1] == 3).all() and (counts[2] == 3).all() and (counts[0] == 6).all()
    assert set(report.panel("msd").data["fits"]["msd"]) == {0, 1, 2}
    assert report.panel("layer_labels").data["per_layer"] == [3, 3]
    results = dict(report.results)
    assert "nm²/s" in results["D (layer A)"]
    # layer B grows 0.1 px of radius per frame = 0.05 nm at 0.5 nm/px: growth is reported
    assert results["radius change per track"].startswith("median +")
    assert _not_blank(report.panel("layer_labels").png()) > 5


def test_report_of_a_labels_only_recording_draws_tracks_over_the_labels(tmp_path):
    from testkit import disks_movie

    import temstream

    frames, _ = disks_movie(n_frames=8, size=64, seed=5)
    np.save(tmp_path / "m.npy", frames)
    assert main(["process", str(tmp_path / "m.npy"), "--out", str(tmp_path / "m.h5"),
                 "--model", "classical", "--no-progress", "record.raw_frames=false"]) == 0
    report = temstream.make_report(tmp_path / "m.h5", tmp_path / "m.html")
    tracks = report.panel("tracks")
    assert "labels: no raw frames" in tracks.caption and _not_blank(tracks.png()) > 5
    assert ("frames recorded", "8 of 64×64 px (labels only, no raw frames)") in report.facts


def test_report_summarises_frames_info_columns_it_does_not_know(tmp_path):
    import h5py
    from testkit import layered_recording

    from temstream.report import build_report

    path, _ = layered_recording(tmp_path / "x.h5", n_frames=8)
    with h5py.File(path, "r+") as f:  # a newer writer's /frames_info with extra columns
        old = f["frames_info"][()]
        dt = np.dtype([(n, old.dtype[n]) for n in old.dtype.names]
                      + [("stage_z", "<f4"), ("holder_state", h5py.string_dtype())])
        new = np.zeros(len(old), dt)
        for n in old.dtype.names:
            new[n] = old[n]
        new["stage_z"] = np.arange(len(old))
        new["holder_state"] = ["ok"] * 6 + ["blurred"] * 2
        del f["frames_info"]
        f.create_dataset("frames_info", data=new, maxshape=(None,))
    other = dict(build_report(path).other_columns)
    assert other["stage_z"].startswith("mean 3.5")
    assert other["holder_state"] == "ok: 6, blurred: 2"
