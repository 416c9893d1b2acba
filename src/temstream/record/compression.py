"""Compression of the frame and label stacks: h5py filter options and chunk encoders.

:func:`compression_options` gives the dataset keywords of a compression choice;
:func:`chunk_encoder` compresses one frame into the bytes of one HDF5 chunk outside HDF5, so
that the recorder's worker threads compress while the writer holds HDF5's lock only to write.
"""

from __future__ import annotations

from typing import Any

import hdf5plugin
import numpy as np

GZIP_LEVEL = 1

def compression_options(name: str) -> dict[str, Any]:
    """h5py dataset keywords for a compression choice.

    ``none`` and ``gzip`` (deflate level 1: a filter every HDF5 build has, so every reader
    opens it with no extra import; the default for labels), and through
    hdf5plugin (readers need ``import hdf5plugin``): ``blosc2-lz4``, ``blosc2-zstd``,
    ``bitshuffle-lz4``.
    """
    if name == "none":
        return {}
    if name == "gzip":
        # no byte shuffle: labels compress as well without it (piecewise constant), and
        # shuffling costs more than deflating them
        return {"compression": "gzip", "compression_opts": GZIP_LEVEL}
    if name == "blosc2-lz4":
        return dict(hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.BITSHUFFLE))
    if name == "blosc2-zstd":
        return dict(hdf5plugin.Blosc2(cname="zstd", clevel=1, filters=hdf5plugin.Blosc2.BITSHUFFLE))
    if name == "bitshuffle-lz4":
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    raise ValueError(f"unknown compression {name!r}")


class Chunk(bytes):
    """One HDF5 chunk already compressed for its dataset's filter (see :func:`chunk_encoder`)."""


def chunk_encoder(name: str, dtype: Any):
    """A function compressing one frame ``(H, W)`` into the bytes of one HDF5 chunk.

    The chunk is written with ``write_direct_chunk``, so compression runs outside HDF5 (and
    its global lock) in any thread; readers decompress through the filter the dataset
    declares (:func:`compression_options`). Returns None for ``none`` (written by h5py).

    Parameters
    ----------
    name : str
        ``blosc2-lz4``, ``blosc2-zstd`` (a Blosc2 cframe, as the Blosc2 filter 32026 reads)
        ``bitshuffle-lz4`` (bitshuffle/LZ4 with the 12-byte header of filter 32008) or
        ``gzip`` (zlib: HDF5's built-in deflate filter).
    dtype : numpy dtype
        The dataset's dtype; frames are converted to it first.
    """
    dtype = np.dtype(dtype)
    if name in ("blosc2-lz4", "blosc2-zstd"):
        import blosc2

        codec = blosc2.Codec.LZ4 if name == "blosc2-lz4" else blosc2.Codec.ZSTD
        cparams = {"codec": codec, "clevel": 5 if name == "blosc2-lz4" else 1,
                   "filters": [blosc2.Filter.BITSHUFFLE], "typesize": dtype.itemsize,
                   "nthreads": 1}

        def encode(array: np.ndarray) -> Chunk:
            a = np.ascontiguousarray(array, dtype=dtype)
            return Chunk(blosc2.SChunk(chunksize=a.nbytes, data=a, cparams=cparams).to_cframe())
        return encode
    if name == "bitshuffle-lz4":
        from temstream.stream.dectris.compression import compress_bslz4

        def encode(array: np.ndarray) -> Chunk:
            return Chunk(compress_bslz4(np.ascontiguousarray(array, dtype=dtype)))
        return encode
    if name == "gzip":
        import zlib

        def encode(array: np.ndarray) -> Chunk:
            a = np.ascontiguousarray(array, dtype=dtype)
            return Chunk(zlib.compress(memoryview(a).cast("B"), GZIP_LEVEL))  # GIL released
        return encode
    return None
