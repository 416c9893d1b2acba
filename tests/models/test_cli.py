"""The train / evaluate / export subcommands, end to end on tiny inputs."""

import json

import numpy as np
import pytest
from PIL import Image

from temstream.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_help_ends_with_an_example(capsys):
    for cmd in ("train", "evaluate", "export"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = capsys.readouterr().out
        assert out.rstrip().splitlines()[-1].strip().startswith(f"temstream {cmd}")


def test_export_writes_a_checked_onnx(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(tiny_checkpoint), "--out", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    err = float(text.split("max |onnxruntime - torch| = ")[1].split()[0])
    assert out.stat().st_size > 1000 and err < 1e-5


def test_evaluate_on_a_labelled_folder(tiny_checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "labels").mkdir()
    yy, xx = np.mgrid[:64, :64]
    for k in range(2):
        mask = (yy - 30) ** 2 + (xx - 20 - 10 * k) ** 2 < 100
        img = np.clip(rng.normal(150, 10, (64, 64)) - 60 * mask, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / "set" / "images" / f"image_{k}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(
            tmp_path / "set" / "labels" / f"label_{k}.png")
    out = tmp_path / "report"
    rc = main(["evaluate", "--model", str(tiny_checkpoint), "--backend", "torch",
               str(tmp_path / "set"), "--out", str(out)])
    assert rc == 0
    md = (tmp_path / "report.md").read_text()
    assert "| real | set | - |" in md and "classical" in md and "model" in md
    assert (tmp_path / "report.png").stat().st_size > 1000


def test_train_smoke_writes_a_loadable_checkpoint(tmp_path, capsys):
    pytest.importorskip("temstream.sim.training")
    out = tmp_path / "run"
    rc = main(["train", "--preset", "smoke", "--out", str(out), "--no-real", "--no-progress",
               "steps=2", "eval_every=2", "pool=2", "val_size=1", "base=4", "depth=2"])
    assert rc == 0
    card = json.loads((out / "model.json").read_text())
    assert card["training"]["steps"] == 2 and card["architecture"]["base"] == 4
    from temstream.models import load_segmenter
    seg = load_segmenter(out, backend="torch", device="cpu")
    assert seg(np.zeros((40, 40), np.uint16)).shape == (3, 40, 40)
    assert main(["train", "--preset", "nope", "--out", str(out)]) == 2
    assert "unknown training preset 'nope'" in capsys.readouterr().err
