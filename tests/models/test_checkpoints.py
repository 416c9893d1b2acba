"""Checkpoints: round trip, integrity checks, clear errors, no unpickling."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from temstream.models.arch import preset
from temstream.models.checkpoints import (CheckpointError, ModelCard, load_checkpoint,
                                          read_card, save_checkpoint)
from temstream.models.unet import build_unet


def _copy(ck, tmp_path):
    dst = tmp_path / "ck"
    shutil.copytree(ck, dst)
    return dst


def test_round_trip_gives_identical_outputs(tiny_checkpoint):
    model, card = load_checkpoint(tiny_checkpoint)
    assert card.name == "tiny" and card.threshold == pytest.approx(0.42)
    assert len(card.sha256) == 64
    again, _ = load_checkpoint(tiny_checkpoint / "model.safetensors")
    x = torch.rand(1, 1, 32, 32) * 1000
    with torch.inference_mode():
        torch.testing.assert_close(model(x), again(x), atol=0, rtol=0)
    assert read_card(tiny_checkpoint / "model.json").architecture == card.architecture


def test_the_same_weights_always_make_the_same_file(tiny_checkpoint, tmp_path):
    # what lets `temstream train --preset default` reproduce the shipped file byte for byte:
    # a writer whose header order varied would give several digests here
    model, card = load_checkpoint(tiny_checkpoint)
    digests = set()
    for k in range(8):
        save_checkpoint(model, ModelCard("tiny", card.architecture, threshold=0.42),
                        tmp_path / f"copy{k}")
        digests.add(read_card(tmp_path / f"copy{k}").sha256)
    assert len(digests) == 1


def test_corrupted_weights_are_refused(tiny_checkpoint, tmp_path):
    ck = _copy(tiny_checkpoint, tmp_path)
    w = ck / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its model card"):
        load_checkpoint(ck)


def test_garbage_weights_with_matching_hash_are_refused(tiny_checkpoint, tmp_path):
    ck = _copy(tiny_checkpoint, tmp_path)
    (ck / "model.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    card = json.loads((ck / "model.json").read_text())
    import hashlib
    card["weights_sha256"] = hashlib.sha256(b"\x80\x04not a safetensors file").hexdigest()
    (ck / "model.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(ck)


def test_architecture_mismatch_is_refused(tiny_checkpoint, tmp_path):
    other = build_unet(preset("default", depth=2, base=8))
    ck = tmp_path / "mismatch"
    save_checkpoint(other, ModelCard("x", preset("default", depth=2, base=8)), ck)
    card = json.loads((ck / "model.json").read_text())
    card["architecture"]["base"] = 4  # card now describes a different network
    (ck / "model.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not fit the architecture"):
        load_checkpoint(ck)


def test_missing_and_damaged_cards(tiny_checkpoint, tmp_path):
    ck = _copy(tiny_checkpoint, tmp_path)
    (ck / "model.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(ck)
    (ck / "model.json").unlink()
    with pytest.raises(CheckpointError, match="no model|missing"):
        load_checkpoint(ck)
    with pytest.raises(CheckpointError, match="no model 'nonexistent'"):
        load_checkpoint("nonexistent")
    (ck / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a temstream model card"):
        load_checkpoint(ck)


class _LeavesAMark:
    """Unpickling this creates the file ``path``: proof that a pickle was executed."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickled_checkpoint(tiny_checkpoint, tmp_path, marker):
    import pickle

    ck = _copy(tiny_checkpoint, tmp_path)
    payload = pickle.dumps({"x": _LeavesAMark(marker)})
    assert pickle.loads(payload) and marker.exists()  # the payload works: it leaves a mark
    marker.unlink()
    (ck / "model.safetensors").write_bytes(payload)
    torch.save({"x": _LeavesAMark(marker)}, ck / "alt.pt")
    card = json.loads((ck / "model.json").read_text())
    from temstream.models.checkpoints import sha256_file
    card["weights_sha256"] = sha256_file(ck / "model.safetensors")  # the card "agrees"
    (ck / "model.json").write_text(json.dumps(card))
    return ck


def test_pickle_is_never_executed(tiny_checkpoint, tmp_path):
    """Issue 22 item 23: a payload whose unpickling leaves a mark, through every loader a user
    can reach: load_checkpoint, `--model PATH`, `temstream info`, and .npy inputs."""
    marker = tmp_path / "pwned"
    ck = _pickled_checkpoint(tiny_checkpoint, tmp_path, marker)
    with pytest.raises(CheckpointError):
        load_checkpoint(ck)
    assert not marker.exists()
    movie = tmp_path / "movie.npy"
    np.save(movie, np.zeros((2, 64, 64), np.uint16))
    obj = tmp_path / "objects.npy"
    np.save(obj, np.array([_LeavesAMark(marker), 1], dtype=object), allow_pickle=True)
    for argv in (["process", str(movie), "--out", str(tmp_path / "a.hspy"), "--model", str(ck)],
                 ["info", str(ck)],
                 ["process", str(obj), "--out", str(tmp_path / "b.hspy")]):
        r = subprocess.run([sys.executable, "-m", "temstream", *argv], capture_output=True,
                           text=True, timeout=180)
        assert r.returncode == 2, (argv, r.stdout, r.stderr[-2000:])
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
        assert not marker.exists(), argv


@pytest.mark.parametrize("damage", ["wrong-shapes", "bogus-header"])
def test_info_checks_what_run_checks(damage, tiny_checkpoint, tmp_path):
    """Issue 22 item 15: `info MODEL` said "verified" whenever the sha256 in the card matched,
    and exited 0 on a MISMATCH."""
    from safetensors.torch import save_file

    from temstream.models.checkpoints import sha256_file

    ck = _copy(tiny_checkpoint, tmp_path)
    if damage == "wrong-shapes":
        save_file({"enc.0.weight": torch.zeros(3, 3)}, str(ck / "model.safetensors"))
    else:
        (ck / "model.safetensors").write_bytes(b"\xff" * 8 + b"{not a header}" + b"\0" * 64)
    card = json.loads((ck / "model.json").read_text())
    card["weights_sha256"] = sha256_file(ck / "model.safetensors")
    (ck / "model.json").write_text(json.dumps(card))
    r = subprocess.run([sys.executable, "-m", "temstream", "info", str(ck)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "verified" not in r.stdout, (r.stdout, r.stderr)
    card["weights_sha256"] = "0" * 64  # and a plain sha256 mismatch fails too
    (ck / "model.json").write_text(json.dumps(card))
    r = subprocess.run([sys.executable, "-m", "temstream", "info", str(ck)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "does not match" in r.stderr


def test_importing_models_does_not_import_torch():
    code = ("import sys, temstream.models, temstream.models.checkpoints, "
            "temstream.models.arch, temstream.models.prep, temstream.models.tiling; "
            "bad = [m for m in ('torch', 'temstream.sim', 'temstream.tracking', "
            "'temstream.stream') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
