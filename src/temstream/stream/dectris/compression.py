"""Compressed pixel blobs of the DECTRIS streams: lazy decompression and the encoders' compressors.

:class:`Compressed` holds a blob as found on the wire; it checks the uncompressed size its header
declares against the size shape and dtype need before anything is allocated, and decompresses
through ``dectris-compression`` (bounds checked against the input) or ``lz4.block`` with a
known output size. :func:`compress_bslz4` and :func:`compress_lz4_hdf5` build such blobs.
"""

from __future__ import annotations

import struct

import numpy as np

from temstream.stream.events import MalformedMessage

#: bitshuffle / LZ4 block size written by the encoders, in bytes (DECTRIS uses 8192)
BLOCK_BYTES = 8192


class Compressed:
    """A compressed byte string as found on the wire (not yet decompressed).

    Parameters
    ----------
    algorithm : str
        ``"bslz4"`` (bitshuffle + LZ4, HDF5-filter framing), ``"lz4"`` (LZ4, HDF5-filter
        framing) or ``"lz4-raw"`` (one LZ4 block without header: Stream V1 ``lz4<``).
    elem_size : int
        Bitshuffle element size in bytes (``bslz4`` only).
    data : bytes-like
    """

    __slots__ = ("algorithm", "elem_size", "data")

    def __init__(self, algorithm: str, elem_size: int, data):
        self.algorithm, self.elem_size, self.data = algorithm, elem_size, data

    def check(self, nbytes: int) -> None:
        """Raise :class:`MalformedMessage` unless this blob can decompress to ``nbytes``."""
        if self.algorithm not in ("bslz4", "lz4", "lz4-raw"):
            raise MalformedMessage("bad-compression",
                                   f"unknown compression {self.algorithm!r}")
        if self.algorithm == "lz4-raw":
            return
        data = memoryview(self.data)
        if data.nbytes < 12:
            raise MalformedMessage("bad-compression", f"compressed blob of {data.nbytes} bytes "
                                   "is shorter than its 12-byte header")
        size, block = struct.unpack_from(">QI", data)
        if size != nbytes:
            raise MalformedMessage("size-mismatch", f"compressed blob says {size} bytes, shape "
                                   f"and dtype need {nbytes}")
        if self.algorithm == "bslz4":
            e = self.elem_size
            if e not in (1, 2, 4, 8) or nbytes % e:
                raise MalformedMessage("bad-compression", f"bitshuffle element size {e} does "
                                       f"not divide {nbytes} bytes")
            if nbytes and (block == 0 or block % (8 * e)):
                raise MalformedMessage("bad-compression", f"bitshuffle block of {block} bytes "
                                       f"is not a multiple of {8 * e}")
        elif nbytes and block == 0:
            raise MalformedMessage("bad-compression", "LZ4 block size 0")

    def decompress(self, nbytes: int) -> bytes:
        """Decompress to exactly ``nbytes`` bytes (call :meth:`check` first)."""
        try:
            if self.algorithm == "lz4-raw":
                import lz4.block

                out = lz4.block.decompress(self.data, uncompressed_size=nbytes)
            else:
                from dectris.compression import decompress

                out = decompress(self.data, self.algorithm, elem_size=self.elem_size or 1)
        except Exception as exc:  # lz4 raises LZ4BlockError, dectris RuntimeError
            raise MalformedMessage("bad-compression", f"cannot decompress "
                                   f"{self.algorithm} blob: {exc}") from None
        if len(out) != nbytes:
            raise MalformedMessage("size-mismatch", f"decompressed to {len(out)} bytes, "
                                   f"expected {nbytes}")
        return out


def compress_bslz4(array: np.ndarray, block_bytes: int = BLOCK_BYTES) -> bytes:
    """Bitshuffle-LZ4 in HDF5-filter framing (12-byte header, then blocks), as DECTRIS sends.

    The result is also a valid chunk for the HDF5 Bitshuffle filter (32008, LZ4).
    """
    import bitshuffle

    flat = np.ascontiguousarray(array).reshape(-1)
    elems = max(8, (block_bytes // flat.itemsize) // 8 * 8)
    body = bitshuffle.compress_lz4(flat, elems)
    return struct.pack(">QI", flat.nbytes, elems * flat.itemsize) + body.tobytes()


def compress_lz4_hdf5(data, block_bytes: int = 1 << 16) -> bytes:
    """LZ4 in HDF5-filter framing: 12-byte header, then (u32 BE length, block) per block;
    a block that does not shrink is stored as it is (length == block size)."""
    import lz4.block

    view = memoryview(data).cast("B")
    out = [struct.pack(">QI", view.nbytes, block_bytes)]
    for start in range(0, view.nbytes, block_bytes):
        raw = view[start:start + block_bytes]
        comp = lz4.block.compress(raw, store_size=False)
        if len(comp) >= len(raw):
            comp = bytes(raw)
        out.append(struct.pack(">I", len(comp)))
        out.append(comp)
    return b"".join(out)
