"""One validated configuration schema, loaded from TOML presets plus ``key=value`` overrides."""

from temstream.config.schema import (
    Config,
    ConfigError,
    config_to_toml,
    load_config,
    parse_overrides,
)

__all__ = ["Config", "ConfigError", "load_config", "parse_overrides", "config_to_toml"]
