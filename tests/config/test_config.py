from pathlib import Path

import pytest

from temstream.config import Config, ConfigError, config_to_toml, load_config, parse_overrides
from temstream.config.schema import preset_names



def test_defaults_validate():
    cfg = load_config()
    assert cfg == Config()
    assert cfg.pipeline.flow == "live"


def test_override_types_are_parsed_from_toml():
    cfg = load_config(overrides=["tracking.search_range=12", "segment.model=default",
                                 "record.raw_frames=false", "pipeline.flow=\"lossless\""])
    assert cfg.tracking.search_range == 12.0 and isinstance(cfg.tracking.search_range, float)
    assert cfg.segment.model == "default"
    assert cfg.record.raw_frames is False
    assert cfg.pipeline.flow == "lossless"


@pytest.mark.parametrize("override, key", [
    ("tracking.serch_range=3", "tracking.serch_range"),
    ("nosuch.key=1", "nosuch"),
    ("tracking.search_range=abc", "tracking.search_range"),
    ("tracking.memory=1.5", "tracking.memory"),
    ("pipeline.flow=fast", "pipeline.flow"),
    ("pipeline.queue_size=0", "pipeline.queue_size"),
    ("record.raw_frames=1", "record.raw_frames"),
    ("segment.tta=3", "segment.tta"),
    ("segment.outline=tight", "segment.outline"),
])
def test_bad_values_name_the_key_in_one_line(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[override])
    message = str(info.value)
    assert key in message and "\n" not in message


def test_section_must_be_a_table(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("tracking = 3\n")
    with pytest.raises(ConfigError, match="'tracking'"):
        load_config(bad)


def test_missing_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="not found"):
        load_config("does-not-exist.toml")


def test_every_shipped_preset_validates_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no repository around: the presets come from the package
    names = preset_names()
    assert {"demo", "live", "replay"} <= set(names)
    for name in names:
        load_config(name)
        load_config(f"{name}.toml")
    assert load_config("live").pipeline.stop_at_series_end is False


def test_a_file_of_the_presets_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "live.toml").write_text("[tracking]\nmemory = 7\n")
    assert load_config("live.toml").tracking.memory == 7
    shipped = load_config("live")  # no file named "live": the shipped one
    assert shipped.tracking.memory == 10 and shipped.pipeline.stop_at_series_end is False


def test_toml_round_trip(tmp_path):
    cfg = load_config(overrides=["tracking.memory=3", "results.publish=tcp://127.0.0.1:7000"])
    path = tmp_path / "c.toml"
    path.write_text(config_to_toml(cfg))
    assert load_config(path) == cfg


def test_parse_overrides_rejects_garbage():
    with pytest.raises(ConfigError):
        parse_overrides(["no-equals-sign"])


def _numeric_bounds():
    import dataclasses

    from temstream.config.schema import Config

    for sf in dataclasses.fields(Config):
        for f in dataclasses.fields(sf.default_factory()):
            lo, hi = f.metadata.get("range", (None, None))
            for bound in (lo, hi):
                if bound is not None:
                    strict = f.metadata.get("above" if bound == lo else "below", False)
                    yield f"{sf.name}.{f.name}", bound, strict


@pytest.mark.parametrize("key, bound, above", list(_numeric_bounds()))
def test_schema_ranges_match_what_the_stages_accept(key, bound, above):
    """Issue 22 item 16: a value the schema accepts is one the stages take (and one it
    refuses names the key); tracking.search_range=0 used to pass here and fail in the linker."""
    from temstream.models.classical import ClassicalSegmenter
    from temstream.pipeline.assemble import build_stages

    override = [f"{key}={bound!r}"]
    if above:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, override)
        return
    config = load_config(None, override)
    build_stages(config, ClassicalSegmenter())


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_inf_fail_every_range_check_with_the_key(value):
    """Issue 22 item 4: record.flush_interval_s=nan used to be accepted (nothing flushed)."""
    with pytest.raises(ConfigError, match=r"record\.flush_interval_s"):
        load_config(None, [f"record.flush_interval_s={value}"])
    with pytest.raises(ConfigError, match=r"tracking\.search_range"):
        load_config(None, [f"tracking.search_range={value}"])


def test_one_default_model_everywhere():
    """Issue 22 item 21: process and run defaulted to classical while demo and every accuracy
    figure used the U-Net."""
    assert load_config().segment.model == "default"
    for preset in preset_names():
        config = load_config(preset)
        assert config.segment.model in ("default", "classical")
        assert config.segment.model == "default", preset
    assert load_config().demo.model == "default"
