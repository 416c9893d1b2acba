"""The low-dose denoiser (issue 25): its truth, its accuracy against raw frames, its causal
stage in the pipeline, its command and its configuration."""

import hashlib

import numpy as np
import pytest

from temstream.cli import main
from temstream.config import ConfigError, load_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

COUNTING = dict(detector="counting", gain=1.0, offset=0.0, read_noise=0.0)


@pytest.fixture(scope="module")
def den():
    from temstream.models.denoise import load_denoiser

    return load_denoiser("denoise")


def low_dose_movie(counts=2.0, frames=5, size=96, seed=11):
    from temstream.sim import simulate
    from temstream.sim.scenarios import scenario_params
    from temstream.sim.training import counts_to_dose

    prm = scenario_params("dispersed", **COUNTING)
    return simulate(prm, frames=frames, size=size, seed=seed, noise_free=True,
                    dose_e_per_A2=counts_to_dose(counts, prm))


def test_the_noise_free_frame_is_the_mean_of_the_noisy_ones():
    movie = low_dose_movie(counts=2.0, frames=3)
    from temstream.sim import simulate
    from temstream.sim.scenarios import scenario_params

    again = simulate(scenario_params("dispersed", **COUNTING), frames=3, size=96, seed=11,
                     dose_e_per_A2=movie.params["dose_e_per_A2"])
    assert np.array_equal(again.frames, movie.frames)  # asking for the truth changes nothing
    assert movie.noise_free.dtype == np.float32 and movie.noise_free.shape == movie.frames.shape
    clean, raw = movie.noise_free.astype(float), movie.frames.astype(float)
    # Poisson counts: the mean over all pixels agrees within 4 standard errors
    assert abs(raw.mean() - clean.mean()) < 4 * np.sqrt(clean.mean() / clean.size)
    assert (raw - clean).var() == pytest.approx(clean.mean(), rel=0.1)  # shot noise


def test_the_model_is_closer_to_the_truth_than_raw_and_the_plain_mean(den):
    movie = low_dose_movie(counts=2.0, frames=3)
    window, clean = movie.frames.astype(np.float32), movie.noise_free[-1]
    pred = den.predict_window(window)
    assert pred.shape == clean.shape and pred.dtype == np.float32 and (pred >= 0).all()
    mse = np.mean((pred - clean) ** 2)
    assert mse < np.mean((window[-1] - clean) ** 2)
    assert mse < np.mean((window.mean(0) - clean) ** 2)


def test_the_output_at_t_never_depends_on_later_frames(den):
    from temstream.models.denoise import denoise_frames

    frames = low_dose_movie(frames=5).frames
    changed = frames.copy()
    changed[3:] = changed[3:][:, ::-1]  # frames 3 and 4 replaced
    a, b = denoise_frames(frames, den), denoise_frames(changed, den)
    assert np.array_equal(a[:3], b[:3])
    assert not np.array_equal(a[3:], b[3:])


def test_the_stage_starts_afresh_with_each_series(den):
    from temstream.pipeline.stages import Denoise

    frames = low_dose_movie(frames=4).frames
    stage = Denoise(den)
    for f in frames[:3]:
        stage(f)
    with_history = stage(frames[3])
    stage.reset()
    assert np.array_equal(stage(frames[3]), Denoise(den)(frames[3]))
    assert not np.array_equal(with_history, Denoise(den)(frames[3]))


class _Echo:
    """A stand-in denoiser whose output is the oldest frame of its window."""

    name, frames = "echo", 3

    def predict_window(self, window):
        return np.asarray(window[0], np.float32)

    def stream(self):
        from temstream.models.denoise import StreamDenoiser

        return StreamDenoiser(self)


class _Events:
    """A source of the given events, then silence."""

    def __init__(self, events):
        self.events = list(events)
        self.malformed, self.stats = {}, {}

    def receive(self, timeout_ms=100):
        return self.events.pop(0) if self.events else None

    def close(self):
        pass


def test_the_runner_resets_the_denoise_stage_at_a_new_series():
    from temstream.models.classical import ClassicalSegmenter
    from temstream.pipeline.runner import Runner
    from temstream.pipeline.stages import Denoise, Instances, Link
    from temstream.stream.events import Frame, SeriesEnd, SeriesStart

    seen, weighed = [], []

    def segment(image):
        seen.append(float(image.flat[0]))
        return ClassicalSegmenter()(image)

    class Seen(Instances):
        def __call__(self, probabilities, frame):
            weighed.append(float(frame.flat[0]))
            return super().__call__(probabilities, frame)

    def frame(series, index, value):
        return Frame(image=np.full((32, 32), value, np.uint16), series=series, index=index)

    events = [SeriesStart(series=0), *[frame(0, i, 10 + i) for i in range(3)], SeriesEnd(0),
              SeriesStart(series=1), *[frame(1, i, 20 + i) for i in range(2)], SeriesEnd(1)]
    runner = Runner(_Events(events), preprocess=lambda im: im, segment=segment,
                    denoise=Denoise(_Echo()), instances=Seen(), link=Link(),
                    flow="lossless", stop_at_series_end=False, idle_timeout_s=0.3)
    runner.run()
    # series 0: windows (10,10,10) (10,10,11) (10,11,12); series 1 never sees series 0
    assert seen == [10, 10, 10, 20, 20]
    # the contrast tests weigh the denoised frame too (before them: the kernels' warm-up)
    assert weighed[-len(seen):] == seen


def _movie_file(tmp_path):
    path = tmp_path / "movie.npy"
    np.save(path, low_dose_movie(frames=3, size=64).frames)
    return path


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".h5"])
def test_the_command_writes_float32_counts_and_never_the_input(tmp_path, suffix):
    from temstream.stream.files import open_movie

    src = _movie_file(tmp_path)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / f"clean{suffix}"
    assert main(["denoise", str(src), "--out", str(out), "--no-progress"]) == 0
    with open_movie(out) as movie:
        stack = np.stack(list(movie))
    assert stack.shape == (3, 64, 64) and stack.dtype == np.float32
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest


def test_the_command_refuses_to_overwrite_its_input_and_bad_files(tmp_path, capsys):
    src = _movie_file(tmp_path)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert main(["denoise", str(src), "--out", str(src)]) == 2
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    assert main(["denoise", str(bad), "--out", str(tmp_path / "o.npy")]) == 2
    assert main(["denoise", str(src), "--out", str(tmp_path / "o.npy"),
                 "--model", "default"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("temstream denoise: error:") for line in err)
    assert not (tmp_path / "o.npy").exists()


def test_help_ends_with_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["denoise", "--help"])
    assert capsys.readouterr().out.rstrip().splitlines()[-1].strip().startswith(
        "temstream denoise")


def test_config_names_the_key_of_a_bad_value():
    assert load_config().denoise.model == ""  # off by default
    with pytest.raises(ConfigError, match="denoise.apply"):
        load_config(overrides=["denoise.apply=everywhere"])
    with pytest.raises(ConfigError, match="denoise.threads"):
        load_config(overrides=["denoise.threads=-1"])
    from temstream.pipeline.assemble import load_denoiser_from_config

    with pytest.raises(ConfigError, match="denoise.model"):
        load_denoiser_from_config(load_config(overrides=["denoise.model=no-such-model"]))
    with pytest.raises(ConfigError, match="denoise.model"):
        load_denoiser_from_config(load_config(overrides=["denoise.model=default"]))


def test_a_denoiser_is_not_a_segmenter():
    from temstream.models import load_segmenter

    with pytest.raises(ValueError, match="denoiser"):
        load_segmenter("denoise")


def test_the_dashboard_shows_the_denoised_frame_where_there_is_one():
    from temstream.gui.bridge import DisplayFrame
    from temstream.pipeline.runner import FrameResult
    from temstream.stream.events import Frame

    raw = np.zeros((8, 8), np.uint16)
    result = FrameResult(Frame(image=raw, series=0, index=0))
    assert DisplayFrame.from_result(result).image is raw
    result.display = np.ones((8, 8), np.float32)
    assert DisplayFrame.from_result(result).image is result.display


def test_the_training_preset_writes_a_checkpoint_the_stage_loads(tmp_path):
    from itertools import islice

    from temstream.models.denoise import load_denoiser
    from temstream.models.training.train import train, training_preset
    from temstream.sim.training import denoise_windows

    cfg = training_preset("denoise", size=32, crop=16, batch=2, steps=2, pool=2, eval_every=2,
                          val_size=1)
    val = list(islice(denoise_windows(cfg.seed + 1000003, size=32, movie_frames=1), 1))
    _, card = train(cfg, denoise_windows(cfg.seed, size=32, movie_frames=2), val,
                    out=tmp_path / "run", progress=False)
    assert card.extra["train_seconds"] > 0 and "sim_val_psnr_gain_db" in card.metrics
    den = load_denoiser(tmp_path / "run")
    assert den.predict_window(val[0][0]).shape == (32, 32)


def test_info_describes_the_shipped_denoiser(capsys):
    assert main(["info", "denoise"]) == 0
    out = capsys.readouterr().out
    assert "a denoiser" in out and "verified" in out
