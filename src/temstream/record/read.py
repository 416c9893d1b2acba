"""Reading a recording's tables as pandas DataFrames."""

from __future__ import annotations

from pathlib import Path

from temstream.record.repair import open_recording


def read_particles(path: str | Path):
    """The particle table of a recording as a pandas DataFrame (trackpy-ready)."""
    import pandas as pd

    with open_recording(path) as f:
        table = f["particles"][()]
    return pd.DataFrame(table)


def read_frames_info(path: str | Path):
    """The per-frame accounting table as a DataFrame, sorted by frame."""
    import pandas as pd

    with open_recording(path) as f:
        df = pd.DataFrame(f["frames_info"][()])
    for col in df.columns:  # the string columns (status, reason, quality) as str
        if df[col].dtype == object:
            df[col] = df[col].map(lambda v: v.decode() if isinstance(v, bytes) else v)
    return df.sort_values(["series", "frame"], kind="stable").reset_index(drop=True)
