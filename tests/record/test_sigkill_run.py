"""Kill a real ``temstream run`` with SIGKILL and open the file as the kill left it, before any
repair (issue 22, items 3 and 24): plain h5py, ``temstream info`` and ncempy open it, the table
lists no frame the data lacks, and at most 1 s of frames is lost.
``scripts/sigkill_trials.py --trials 30`` is the long version of this test."""

import importlib.util
import random
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sigkill_trials.py"


@pytest.fixture(scope="module")
def trials():
    spec = importlib.util.spec_from_file_location("sigkill_trials", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_killed_run_leaves_a_file_every_reader_opens(trials, seed, tmp_path):
    r = trials.trial(seed, tmp_path, 30.0, random.Random(seed), [])
    assert "h5py_error" not in r, r
    assert r["frames_read"] == r["frames_listed"] and r["labels_read"] == r["frames_listed"], r
    assert not r["claimed_missing"] and not r["processed_beyond_labels"], r
    assert r["info_rc"] == 0 and r["untouched"] and "ncempy_error" not in r, r
    assert r["loss_s"] <= 1.0, r
