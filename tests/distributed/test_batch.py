"""Many movies at once: planning, skipping, failures, and recordings identical single vs Dask."""

from __future__ import annotations

import pickle

import h5py
import hdf5plugin  # noqa: F401 - the label stacks are Blosc2-compressed
import numpy as np
import pytest

from temstream.cli import main
from temstream.distributed import find_movies, is_done, plan_jobs

#: /frames_info columns that hold clock times or durations (differ between any two runs)
TIMING = {"receive_time", "queue_ms", "latency_ms"}


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    from testkit import disks_movie

    d = tmp_path_factory.mktemp("movies")
    for i in range(3):
        frames, _ = disks_movie(n_frames=12, size=64, seed=i)
        np.save(d / f"m{i}.npy", frames)
    return d


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as lc, \
            distributed.Client(lc) as c:
        yield c


def assert_same_recording(a_path, b_path):
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        assert sorted(a["data"]) == sorted(b["data"])
        for name in a["data"]:
            np.testing.assert_array_equal(a["data"][name]["data"][()], b["data"][name]["data"][()])
        pa, pb = a["particles"][()], b["particles"][()]
        assert pa.dtype == pb.dtype and len(pa) > 0
        for col in pa.dtype.names:
            np.testing.assert_array_equal(pa[col], pb[col], err_msg=col)
        fa, fb = a["frames_info"][()], b["frames_info"][()]
        assert len(fa) == len(fb)
        for col in fa.dtype.names:
            if col in TIMING or col.endswith("_ms"):
                continue
            np.testing.assert_array_equal(fa[col], fb[col], err_msg=col)
        assert a.attrs["config"] == b.attrs["config"]
        assert a.attrs["model"] == b.attrs["model"]


@pytest.mark.parametrize("model", ["classical", "default"])
def test_recordings_on_a_dask_cluster_are_identical_to_single_process(tmp_path, movies,
                                                                       client, model):
    """A U-Net's probabilities depend on its thread count in the last bits (x, y, score in
    the 8th digit): a worker runs one thread, so the single process runs one too."""
    import temstream

    threads = ["segment.threads=1"] if model != "classical" else []
    for i in range(3):
        assert main(["process", str(movies / f"m{i}.npy"), "--out", str(tmp_path / f"s{i}.h5"),
                     "--model", model, "--no-progress", *threads]) == 0
    result = temstream.process(movies, tmp_path / "dask", model=model, client=client,
                               overrides=threads, progress=False)
    assert [r.status for r in result.results] == ["done"] * 3
    assert len({r.worker for r in result.results}) >= 1 and result.workers == 2
    for i in range(3):
        assert_same_recording(tmp_path / f"s{i}.h5", tmp_path / "dask" / f"m{i}.h5")
    assert not list((tmp_path / "dask").glob("*.partial.h5"))


def test_cli_cluster_reports_failures_per_file_and_skips_done_ones(tmp_path, movies, capsys):
    pytest.importorskip("distributed")
    bad = tmp_path / "in"
    bad.mkdir()
    for i in range(2):
        (bad / f"m{i}.npy").write_bytes((movies / f"m{i}.npy").read_bytes())
    (bad / "broken.npy").write_bytes(b"not a movie")
    out = tmp_path / "out"
    args = ["process", str(bad), "--out", str(out), "--model", "classical", "--no-progress",
            "--cluster", "local:2"]
    assert main(args) == 1  # one movie failed
    text = capsys.readouterr().out
    assert "FAILED" in text and "broken.npy" in text
    assert "movies            3: done 2, skipped 0, failed 1" in text
    assert sorted(p.name for p in out.iterdir()) == ["m0.h5", "m1.h5"]
    in_process = args[:-2]  # the same batch without a cluster (one movie after the other)
    assert main(in_process) == 1  # again: the done ones are skipped, the broken one fails again
    text = capsys.readouterr().out
    assert "done 0, skipped 2, failed 1" in text
    # other settings: not done any more
    assert main(in_process + ["tracking.search_range=9"]) == 1
    assert "done 2, skipped 0, failed 1" in capsys.readouterr().out


def test_plan_jobs_names_outputs_and_refuses_collisions(tmp_path, movies):
    jobs = plan_jobs([movies], tmp_path / "o")
    assert [j.out for j in jobs] == [str(tmp_path / "o" / f"m{i}.h5") for i in range(3)]
    assert jobs[0].partial.endswith("m0.partial.h5")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m0.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="would both be recorded"):
        plan_jobs([movies / "m0.npy", tmp_path / "a" / "m0.npy"], tmp_path / "o")
    with pytest.raises(ValueError, match="is a file but there are 3 movies"):
        plan_jobs([movies], tmp_path / "one.h5")
    with pytest.raises(ValueError, match="no movie files"):
        plan_jobs([tmp_path / "o"], tmp_path / "p")
    assert find_movies([movies]) == sorted(movies.glob("m*.npy"))


def test_sequential_batch_without_dask_and_the_partial_file_rule(tmp_path, movies):
    import temstream

    r = temstream.process([movies / "m0.npy"], tmp_path, model="classical", progress=False)
    assert r.results[0].status == "done" and r.frames == 12 and r.workers == 1
    rec = tmp_path / "m0.h5"
    assert is_done(rec)
    with h5py.File(rec, "r+") as f:  # a recording whose run did not end normally is not done
        f.attrs["closed_cleanly"] = False
    assert not is_done(rec)
    r = temstream.process([movies / "m0.npy"], tmp_path, model="classical", progress=False)
    assert r.results[0].status == "done" and is_done(rec)


def test_open_recording_is_lazy_and_pickles(tmp_path, movies):
    import dask.array as da

    import temstream

    out = tmp_path / "r.h5"
    assert main(["process", str(movies / "m1.npy"), "--out", str(out), "--model", "classical",
                 "--no-progress"]) == 0
    with temstream.open_recording(out) as rec:
        assert isinstance(rec.frames, da.Array) and rec.frames.chunks[0] == (1,) * 12
        assert rec.frames.shape == (12, 64, 64) and rec.labels.dtype == np.uint32
        with h5py.File(out, "r") as f:
            np.testing.assert_array_equal(rec.frames[5].compute(), f["data/frames/data"][5])
            np.testing.assert_array_equal(rec.labels.compute(), f["data/labels/data"][()])
        again = pickle.loads(pickle.dumps(rec.labels))  # what a Dask worker receives
        assert int(again.max().compute()) == int(rec.labels.max().compute()) > 0
        assert len(rec.particles) == 48 and rec.summary["processed"] == 12
        assert list(rec.frame_indices) == list(range(12)) and rec.layer_labels is None


def test_hyperspy_opens_a_recording_lazily(tmp_path, movies):
    hs = pytest.importorskip("hyperspy.api")
    out = tmp_path / "r.h5"
    assert main(["process", str(movies / "m2.npy"), "--out", str(out), "--model", "classical",
                 "--no-progress"]) == 0
    import inspect

    # .h5 has several candidate readers: name EMD (``file_format`` since HyperSpy 2.4)
    key = "file_format" if "file_format" in inspect.signature(hs.load).parameters else "reader"
    signals = hs.load(out, lazy=True, **{key: "EMD"})
    signals = signals if isinstance(signals, list) else [signals]
    frames = [s for s in signals if "frames" in s.metadata.General.title]
    assert frames and frames[0]._lazy
    data = np.asarray(frames[0].data.compute())
    with h5py.File(out, "r") as f:
        raw = f["data/frames/data"][()]
    assert sorted(data.shape) == sorted(raw.shape)


def test_open_recording_follows_a_replaced_file(tmp_path, movies):
    import temstream

    out = tmp_path / "r.h5"
    assert main(["process", str(movies / "m0.npy"), "--out", str(out), "--model", "classical",
                 "--no-progress"]) == 0
    rec = temstream.open_recording(out)
    first = rec.frames[0].compute()
    assert main(["process", str(movies / "m1.npy"), "--out", str(tmp_path / "s.h5"),
                 "--model", "classical", "--no-progress"]) == 0
    (tmp_path / "s.h5").replace(out)  # as a batch run's rename does
    again = temstream.open_recording(out).frames[0].compute()
    assert not np.array_equal(first, again)
    np.testing.assert_array_equal(again, np.load(movies / "m1.npy")[0])


def test_workers_get_glibc_thresholds_back(client):
    from temstream.distributed.batch import tune_malloc

    env = client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"))
    tuned = client.run(tune_malloc)
    for worker, value in env.items():  # the nanny sets 65536 (the reason for tune_malloc)
        assert tuned[worker] == bool(value)
