"""The train / evaluate / export subcommands, end to end on tiny inputs."""

import json

import numpy as np
import pytest
from PIL import Image

from temstream.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_help_ends_with_an_example(capsys):
    for cmd in ("train", "finetune", "evaluate", "export"):
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


def _labelled_folder(folder, n=2, size=64):
    """images/image_K.png + labels/label_K.png: dark disks on noise."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for k in range(n):
        mask = (yy - 30) ** 2 + (xx - 20 - 10 * (k % 3)) ** 2 < 100
        img = np.clip(rng.normal(150, 10, (size, size)) - 60 * mask, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / "images" / f"image_{k}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(folder / "labels" / f"label_{k}.png")


def test_evaluate_on_a_labelled_folder(tiny_checkpoint, tmp_path, capsys):
    _labelled_folder(tmp_path / "set")
    out = tmp_path / "report"
    rc = main(["evaluate", "--model", str(tiny_checkpoint), "--backend", "torch",
               str(tmp_path / "set"), "--out", str(out)])
    assert rc == 0
    md = (tmp_path / "report.md").read_text()
    assert "| real | set | - |" in md and "classical" in md and "model" in md
    assert (tmp_path / "report.png").stat().st_size > 1000


def test_evaluate_simulated_movies_with_intervals(tiny_checkpoint, tmp_path, capsys):
    """Independent movies per scenario: the table carries intervals over them and the paired
    differences from classical; --movies 0 is a usage error."""
    pytest.importorskip("temstream.sim")
    import shutil

    twin = tmp_path / "twin"
    shutil.copytree(tiny_checkpoint, twin)  # the same weights under another name
    out = tmp_path / "sim"
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--model", str(twin),
                 "--backend", "torch", "sim:assembly", "--doses", "moderate", "--frames", "1",
                 "--movies", "3", "--size", "64", "--no-progress", "--out", str(out)]) == 0
    md = (tmp_path / "sim.md").read_text()
    assert "--movies 3" in md and "(sim: movies)" in md
    assert "## Differences from classical" in md and "| sim | moderate | tiny | " in md
    # two U-Nets: the second is compared with the first, paired, and identical weights tie
    assert "## Differences from tiny (paired)" in md
    assert ("| sim | moderate | twin | +0.000 | +0.000 to +0.000 | +0.000 | +0.000 to +0.000 |"
            in md)
    row = next(line for line in md.splitlines() if line.startswith("| sim | assembly")
               and "| tiny |" in line).split("|")
    dice = float(row[8])
    lo, hi = (float(v) for v in row[14].split("–"))
    assert lo <= dice <= hi
    capsys.readouterr()
    assert main(["evaluate", "sim:assembly", "--movies", "0"]) == 2
    assert "--movies" in capsys.readouterr().err


def test_train_smoke_writes_a_loadable_checkpoint(tmp_path, capsys):
    pytest.importorskip("temstream.sim.training")
    out = tmp_path / "run"
    rc = main(["train", "--preset", "smoke", "--out", str(out), "--no-real", "--no-progress",
               "steps=2", "eval_every=2", "pool=2", "val_size=1"])
    assert rc == 0
    card = json.loads((out / "model.json").read_text())
    assert card["training"]["steps"] == 2 and card["architecture"]["base"] == 4
    from temstream.models import load_segmenter
    seg = load_segmenter(out, backend="torch", device="cpu")
    assert seg(np.zeros((40, 40), np.uint16)).shape == (3, 40, 40)
    assert main(["train", "--preset", "nope", "--out", str(out)]) == 2
    assert "unknown training preset 'nope'" in capsys.readouterr().err


def test_finetune_cross_validates_then_writes_a_loadable_model(tiny_checkpoint, tmp_path,
                                                              capsys):
    _labelled_folder(tmp_path / "set", n=4, size=96)
    out = tmp_path / "ft"
    rc = main(["finetune", str(tmp_path / "set"), "--model", str(tiny_checkpoint), "--folds",
               "2", "--out", str(out), "--no-progress", "steps=3", "eval_every=3", "pool=4",
               "size=64", "crop=48"])
    assert rc == 0
    text = capsys.readouterr().out
    # each fold scores classical, the starting model and the fine-tuned one on its held-out pair
    assert text.count("| real | fold 1 |") == 3 and text.count("| real | fold 2 |") == 3
    # the mean over folds, and the paired gain of the fine-tuned model over its start
    gain = text[text.index("Gain from fine-tuning"):]
    assert "| real | - | fine-tuned | " in gain and "Mean over folds" in text
    card = json.loads((out / "model.json").read_text())
    assert card["training"]["init"] == str(tiny_checkpoint)
    assert card["architecture"]["depth"] == 2 and "train_images_val_dice" in card["metrics"]
    assert card["command"].startswith("temstream finetune")
    assert (out / "fold1" / "model.json").exists() and "held-out" in (out / "finetune.md").read_text()
    from temstream.models import load_segmenter
    assert load_segmenter(out, backend="torch", device="cpu")(
        np.zeros((48, 48), np.uint8)).shape == (3, 48, 48)


def test_finetune_rejects_bad_folds(tiny_checkpoint, tmp_path, capsys):
    _labelled_folder(tmp_path / "set", n=2)
    assert main(["finetune", str(tmp_path / "set"), "--model", str(tiny_checkpoint), "--folds",
                 "5", "--out", str(tmp_path / "ft")]) == 2
    assert "--folds" in capsys.readouterr().err


def test_evaluate_against_the_half_contrast_truth_of_the_simulator(tmp_path):
    """``--truth half-contrast``: the simulated movies are scored against their labels redrawn
    on the noise-free twin of each frame (same seed, same scene)."""
    from temstream.cli._pipeline import build_runner
    from temstream.config import load_config
    from temstream.models.metrics import pixel_scores
    from temstream.sim import simulate
    from temstream.stream.sources import MemorySource
    from temstream.sim.scenarios import scenario_params
    from temstream.tracking.edges import half_contrast_outlines

    args = ["evaluate", "--model", "classical", "sim:sparse-large", "--doses", "moderate",
            "--frames", "2", "--movies", "1", "--size", "96", "--no-progress"]
    for truth in ("extent", "half-contrast"):
        assert main(args + ["--truth", truth, "--out", str(tmp_path / truth)]) == 0
    md = {t: (tmp_path / f"{t}.md").read_text() for t in ("extent", "half-contrast")}
    assert "--truth half-contrast" in md["half-contrast"]
    assert "Simulated truth: each particle where the noise-free frame" in md["half-contrast"]
    dose = scenario_params("sparse-large")["dose_e_per_A2"]
    noisy = simulate("sparse-large", frames=2, size=96, seed=2024, dose_e_per_A2=dose)
    clean = simulate("sparse-large", frames=2, size=96, seed=2024, dose_e_per_A2=dose,
                     noise=False)
    assert np.array_equal(noisy.labels, clean.labels)
    runner = build_runner(load_config(None, ["segment.model=classical"]), MemorySource([]))
    scores = {"extent": [0, 0, 0], "half-contrast": [0, 0, 0]}
    for frame, clean_frame, labels in zip(noisy.frames, clean.frames, noisy.labels):
        mask = runner.instances(runner.segment(frame), frame)[0] > 0
        drawn = half_contrast_outlines(clean_frame, labels, smooth_px=0.5)
        for truth, true_mask in (("extent", labels > 0), ("half-contrast", drawn > 0)):
            s = pixel_scores(mask, true_mask)
            scores[truth] = [a + s[k] for a, k in zip(scores[truth], ("tp", "fp", "fn"))]
    for truth, (tp, fp, fn) in scores.items():
        row = next(line for line in md[truth].splitlines()
                   if line.startswith("| sim | sparse-large") and "| classical |" in line)
        assert f"{2 * tp / (2 * tp + fp + fn):.3f}" == f"{float(row.split('|')[8]):.3f}"
    assert scores["extent"] != scores["half-contrast"]


def _pipeline_dice(folder, overrides):
    """Pooled Dice of the instance labels a live run's stages (``temstream run`` with these
    overrides) record for the labelled images in ``folder``."""
    from temstream.cli._pipeline import build_runner
    from temstream.config import load_config
    from temstream.models.metrics import pixel_scores
    from temstream.models.training.realdata import load_msa_em
    from temstream.stream.sources import MemorySource

    runner = build_runner(load_config(None, overrides + ["segment.backend=torch"]),
                          MemorySource([]))
    tp = fp = fn = 0
    for _, image, truth in load_msa_em(folder):
        labels, _ = runner.instances(runner.segment(runner.preprocess(image)), image)
        s = pixel_scores(labels > 0, truth)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
    return 2 * tp / max(2 * tp + fp + fn, 1)


def _reported_dice(md, name):
    row = next(line for line in md.splitlines() if line.startswith("| real | set | - |")
               and f"| {name} |" in line)
    return float(row.split("|")[8])


def test_evaluate_scores_the_labels_a_live_run_records(tiny_checkpoint, tmp_path):
    """Every model is scored through the stages ``temstream run`` builds from the same
    settings: the recorded labels' Dice, under each outline rule, TTA and threshold."""
    _labelled_folder(tmp_path / "set")
    ck = str(tiny_checkpoint)
    variants = {"tiny": [], "tiny@instances.outline=half-contrast":
                ["instances.outline=half-contrast"],
                "tiny@threshold=0.8@instances.outline=threshold":
                ["segment.threshold=0.8", "instances.outline=threshold"]}
    args = ["evaluate", "--backend", "torch", "--tta", "2", str(tmp_path / "set"),
            "--out", str(tmp_path / "r")]
    for name in variants:
        args += ["--model", ck + name.removeprefix("tiny")]
    assert main(args) == 0
    md = (tmp_path / "r.md").read_text()
    assert "--tta 2" in md and "## Differences from tiny (paired)" in md
    assert "half of each particle's contrast" in md and (tmp_path / "r.png").exists()
    for name, overrides in variants.items():
        want = _pipeline_dice(tmp_path / "set",
                              [f"segment.model={ck}", "segment.tta=2"] + overrides)
        assert f"{want:.3f}" == f"{_reported_dice(md, name):.3f}", name
    assert len({_reported_dice(md, n) for n in variants}) >= 2  # the settings mattered


def test_evaluate_honours_the_segment_and_classical_keys(tiny_checkpoint, tmp_path):
    """``segment.threshold`` moves the U-Net's decision threshold (not the baseline's), and
    ``[classical]`` keys reach the baseline, as they would in ``temstream run``."""
    _labelled_folder(tmp_path / "set")
    out = tmp_path / "report_t0.8"                      # the ".8" is part of the name
    keys = ["segment.threshold=0.8", "classical.sigma=0", "classical.method=triangle"]
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--backend", "torch",
                 str(tmp_path / "set"), "--out", str(out), *keys]) == 0
    md = (tmp_path / "report_t0.8.md").read_text()
    assert (tmp_path / "report_t0.8.png").stat().st_size > 1000
    assert "Thresholds: classical 0.50, tiny 0.80" in md
    tiny = _pipeline_dice(tmp_path / "set", [f"segment.model={tiny_checkpoint}", keys[0]])
    classical = _pipeline_dice(tmp_path / "set", ["segment.model=classical", *keys[1:]])
    assert f"{tiny:.3f}" == f"{_reported_dice(md, 'tiny'):.3f}"
    assert f"{classical:.3f}" == f"{_reported_dice(md, 'classical'):.3f}"
    # and the settings mattered: the defaults score differently on these images
    assert _pipeline_dice(tmp_path / "set", ["segment.model=classical"]) != classical


def test_evaluate_gives_a_model_its_own_instance_settings(tiny_checkpoint, tmp_path, capsys):
    """``MODEL@instances.KEY=VALUE``: that model's particles are extracted with its own
    [instances] settings, the other models' with the pipeline's; bad keys are named."""
    _labelled_folder(tmp_path / "set")
    plain = f"{tiny_checkpoint}@instances.outline=half-contrast"
    variant = f"{plain}@instances.min_area=5000"
    assert main(["evaluate", "--model", plain, "--model", variant, "--backend", "torch",
                 str(tmp_path / "set"), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r.md").read_text()
    assert "instances.* settings after @ are its own" in md
    base = [f"segment.model={tiny_checkpoint}", "instances.outline=half-contrast"]
    for name, extra in (("tiny@instances.outline=half-contrast", []),
                        ("tiny@instances.outline=half-contrast@instances.min_area=5000",
                         ["instances.min_area=5000"])):
        want = _pipeline_dice(tmp_path / "set", base + extra)
        assert f"{want:.3f}" == f"{_reported_dice(md, name):.3f}"
    capsys.readouterr()
    assert main(["evaluate", "--model", f"{tiny_checkpoint}@instances.min_aera=4",
                 str(tmp_path / "set")]) == 2
    assert "instances.min_aera" in capsys.readouterr().err
    assert main(["evaluate", "--model", f"{tiny_checkpoint}@outline=tight",
                 str(tmp_path / "set")]) == 2
    assert "segment.outline" in capsys.readouterr().err


def test_evaluate_from_python_matches_the_command(tiny_checkpoint, tmp_path, capsys):
    import temstream

    _labelled_folder(tmp_path / "set")
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--backend", "torch",
                 str(tmp_path / "set"), "--out", str(tmp_path / "r")]) == 0
    report = temstream.evaluate([str(tiny_checkpoint)], [str(tmp_path / "set")],
                                backend="torch")
    assert report.text() in (tmp_path / "r.md").read_text()
    assert report.figure(tmp_path / "f.png").stat().st_size > 1000
    assert list(report.models) == ["classical", "tiny"]


def test_info_describes_a_model_and_checks_its_weights(tiny_checkpoint, tmp_path, capsys):
    import shutil

    from temstream.models.checkpoints import load_checkpoint
    from temstream.models.unet import count_parameters

    assert main(["info", "default"]) == 0
    out = capsys.readouterr().out
    model, card = load_checkpoint("default")
    assert f"{count_parameters(model):,} parameters" in out
    assert f"sha256 {card.sha256[:12]}... (verified" in out
    assert f"threshold      {card.threshold:.2f}" in out

    assert main(["info", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "classes        background, particle, boundary" in out and "0.42" in out
    # a damaged copy is an error (exit status 2), as it is for `run` (issue 22 item 15)
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    w = bad / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    assert main(["info", str(bad)]) == 2
    assert "does not match its model card" in capsys.readouterr().err


def test_evaluate_reports_track_continuity_on_simulated_movies():
    """Simulated movies hold their true tracks: the report scores the tracks a live run would
    record beside Dice and F1 (end to end, median track length, tracks per true track)."""
    import temstream

    report = temstream.evaluate([], ["sim:hex-lattice"], doses=["moderate"], frames=12,
                                movies=1, size=96)
    row = report.rows[0]
    assert 0.0 <= row["end_to_end"] <= 1.0 and 0.0 < row["track_length"] <= 1.0
    assert row["tracks_per_true"] > 0
    text = report.text()  # what `temstream evaluate` prints and writes
    assert "## Track continuity" in text and "| hex-lattice | moderate | classical |" in text
