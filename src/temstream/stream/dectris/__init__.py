"""DECTRIS detector streams: Stream V2 (CBOR) and legacy Stream V1 (multipart JSON).

Decoders turn the detector's messages into :class:`~temstream.stream.events.SeriesStart`,
:class:`~temstream.stream.events.Frame` (or :class:`~temstream.stream.events.PendingFrame` when
the pixels still need decompressing) and :class:`~temstream.stream.events.SeriesEnd`; encoders
build the same messages so the emulator and ``temstream replay`` can play a DECTRIS detector.
Message layouts follow DECTRIS's published specification (``docs/wire-format.md`` maps them onto
events).

Nothing from the wire is trusted: shapes are capped (:data:`MAX_SIDE`, :data:`MAX_PIXELS`), the
uncompressed size in a compressed blob's header must equal the size the shape and dtype declare
before anything is allocated, and decompression goes through ``dectris-compression`` (bounds
checked against the input) or ``lz4.block`` with a known output size.

Modules: :mod:`~temstream.stream.dectris.v2` (Stream V2: CBOR tags, :class:`V2Decoder`,
:class:`V2Encoder`), :mod:`~temstream.stream.dectris.v1` (Stream V1: :class:`V1Decoder`,
:class:`V1Encoder`), :mod:`~temstream.stream.dectris.compression` (:class:`Compressed`,
:func:`compress_bslz4`, :func:`compress_lz4_hdf5`) and ``_common`` (helpers both share); the
caps live in :mod:`temstream.stream.limits`. Every public name is importable from here.
"""

from __future__ import annotations

from temstream.stream.dectris.compression import (BLOCK_BYTES, Compressed, compress_bslz4,
                                                  compress_lz4_hdf5)
from temstream.stream.dectris.v1 import V1Decoder, V1Encoder
from temstream.stream.dectris.v2 import (MAGIC, TAG_COMPRESSION, TAG_MULTI_DIM,
                                         TAG_MULTI_DIM_COLUMN_MAJOR, TYPED_ARRAY_TAGS, V2Decoder,
                                         V2Encoder)
from temstream.stream.limits import MAX_DEPTH, MAX_PIXELS, MAX_SIDE

__all__ = [
    "V2Decoder", "V2Encoder", "V1Decoder", "V1Encoder",
    "Compressed", "compress_bslz4", "compress_lz4_hdf5", "BLOCK_BYTES",
    "MAGIC", "TYPED_ARRAY_TAGS", "TAG_MULTI_DIM", "TAG_MULTI_DIM_COLUMN_MAJOR", "TAG_COMPRESSION",
    "MAX_SIDE", "MAX_PIXELS", "MAX_DEPTH",
]
