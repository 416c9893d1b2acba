"""HDF5 recordings in the EMD v0.2 layout (``docs/recording.md``): the recorder and the readers.

- :mod:`~temstream.record.layout`       the file layout: format, table columns, EMD dims
- :mod:`~temstream.record.compression`  h5py filter options and chunk encoders
- :mod:`~temstream.record.writer`       :class:`RecordingWriter`, :func:`write_movie`
- :mod:`~temstream.record.sink`         :class:`RecorderSink`, the writer's pipeline thread
- :mod:`~temstream.record.repair`       :func:`open_recording`, :func:`salvage` after a crash
- :mod:`~temstream.record.read`         :func:`read_particles`, :func:`read_frames_info`
- :mod:`~temstream.record.lazy`         :class:`Recording`: stacks as Dask arrays, tables on use

The writer flushes at least every ``flush_interval_s`` so a killed run leaves a readable file
with every flushed frame. Every public name is importable from here.
"""

from __future__ import annotations

from temstream.record.compression import Chunk, chunk_encoder, compression_options
from temstream.record.lazy import Recording
from temstream.record.layout import (FORMAT, FORMAT_VERSION, INFO_COLUMNS, NM_COLUMNS,
                                     PARTICLE_COLUMNS)
from temstream.record.read import read_frames_info, read_particles
from temstream.record.repair import open_recording, repair_plan, repaired_copy, salvage
from temstream.record.sink import RecorderSink
from temstream.record.writer import RecordingError, RecordingWriter, write_movie

__all__ = [
    "FORMAT", "FORMAT_VERSION", "PARTICLE_COLUMNS", "NM_COLUMNS", "INFO_COLUMNS",
    "compression_options", "Chunk", "chunk_encoder",
    "RecordingError", "RecordingWriter", "write_movie", "RecorderSink",
    "salvage", "open_recording", "repair_plan", "repaired_copy", "read_particles",
    "read_frames_info", "Recording",
]
