"""Minimal, valid files in the proprietary formats temstream reads through rosettasciio, written
here so that those readers run in every CI run without third-party sample files (issue 22,
item 25): Gatan DM3/DM4, FEI/Thermo TIA SER, Thermo Fisher Velox EMD.

Each writer stores an ``(N, H, W)`` movie with a pixel size (nm) and a frame time (s), laid
out as the format describes it (and as rosettasciio, the reference reader, reads it back).
"""

from __future__ import annotations

import json
import struct

import numpy as np

# -- Gatan DigitalMicrograph 3/4 -------------------------------------------------------------
_DM_SIMPLE = {"<i2": 2, "<i4": 3, "<u2": 4, "<u4": 5, "<f4": 6, "<f8": 7, "|u1": 10}
_DM_IMAGE_TYPE = {"<u2": 10, "<u4": 11, "<f4": 2, "|u1": 6, "<i2": 1, "<i4": 7}


class _DM:
    def __init__(self, version: int):
        self.v = version

    def n(self, value: int) -> bytes:  # lengths and type codes: big-endian, 4 or 8 bytes
        return struct.pack(">I" if self.v == 3 else ">Q", value)

    def _header(self, kind: int, name: str) -> bytes:
        raw = name.encode("latin-1")
        return bytes([kind]) + struct.pack(">H", len(raw)) + raw

    def data(self, name: str, info: list[int], payload: bytes) -> bytes:
        body = b"%%%%" + self.n(len(info)) + b"".join(self.n(i) for i in info) + payload
        size = self.n(len(body)) if self.v == 4 else b""
        return self._header(21, name) + size + body

    def scalar(self, name: str, value, dtype: str) -> bytes:
        dt = np.dtype(dtype)
        return self.data(name, [_DM_SIMPLE[dt.str]], np.asarray(value, dt).tobytes())

    def array(self, name: str, values: np.ndarray) -> bytes:
        values = np.ascontiguousarray(values)
        dt = values.dtype.newbyteorder("<") if values.dtype.itemsize > 1 else values.dtype
        return self.data(name, [20, _DM_SIMPLE[dt.str], values.size],
                         values.astype(dt).tobytes())

    def text(self, name: str, text: str) -> bytes:  # DM strings: arrays of UTF-16 units
        return self.array(name, np.frombuffer(text.encode("utf-16-le"), "<u2"))

    def group(self, name: str, tags: list[bytes]) -> bytes:
        body = b"\x00\x01" + (self.n(0) if self.v == 4 else b"") + self.n(len(tags))
        return self._header(20, name) + body + b"".join(tags)


def write_dm(path, movie: np.ndarray, pixel_size_nm: float, frame_time_s: float,
             version: int = 3) -> None:
    """A DM3 (``version=3``) or DM4 file holding ``movie`` (N, H, W) as one 3-D image."""
    dm = _DM(version)
    n, h, w = movie.shape
    calib = [dm.group("", [dm.scalar("Origin", 0.0, "<f4"), dm.scalar("Scale", s, "<f4"),
                           dm.text("Units", u)])
             for s, u in ((pixel_size_nm, "nm"), (pixel_size_nm, "nm"), (frame_time_s, "s"))]
    dtype = movie.dtype.newbyteorder("<") if movie.dtype.itemsize > 1 else movie.dtype
    image = dm.group("", [
        dm.group("ImageData", [
            dm.group("Calibrations", [
                dm.group("Brightness", [dm.scalar("Origin", 0.0, "<f4"),
                                        dm.scalar("Scale", 1.0, "<f4"), dm.text("Units", "")]),
                dm.group("Dimension", calib)]),
            dm.array("Data", movie.astype(dtype).ravel()),  # x fastest, then y, then z
            dm.scalar("DataType", _DM_IMAGE_TYPE[dtype.str], "<i4"),
            dm.group("Dimensions", [dm.scalar("", v, "<u4") for v in (w, h, n)]),
            dm.scalar("PixelDepth", dtype.itemsize, "<i4")]),
        dm.group("ImageTags", []),
        dm.text("Name", "movie")])
    root = dm.group("ImageList", [image])
    tags = b"\x00\x01" + dm.n(1) + root  # the root group: sorted, open, one tag
    head = struct.pack(">I", version) + dm.n(len(tags) + 8) + struct.pack(">I", 1)
    with open(path, "wb") as f:
        f.write(head + tags + b"\x00" * 8)


# -- TIA (FEI/Thermo) SER -------------------------------------------------------------------
def write_ser(path, movie: np.ndarray, pixel_size_nm: float, frame_time_s: float) -> None:
    """A TIA series file: ``N`` 2-D image elements along one time dimension (version 0x0210)."""
    n, h, w = movie.shape
    types = {"<u2": 2, "|u1": 1, "<u4": 3, "<f4": 7, "<i2": 5, "<i4": 6}
    dtype = movie.dtype.newbyteorder("<") if movie.dtype.itemsize > 1 else movie.dtype
    units, desc = b"s", b"Time"
    dims = (struct.pack("<IddII", n, 0.0, frame_time_s, 0, len(desc)) + desc
            + struct.pack("<I", len(units)) + units)
    offsets_at = 30 + len(dims)
    first_data = offsets_at + 8 * n
    px = pixel_size_nm * 1e-9  # metres
    elements, data_offsets = [], []
    pos = first_data
    for k in range(n):
        el = (struct.pack("<ddIddIHII", 0.0, px, 0, 0.0, px, 0, types[dtype.str], w, h)
              + np.ascontiguousarray(movie[k][::-1]).astype(dtype).tobytes())  # rows bottom-up
        data_offsets.append(pos)
        elements.append(el)
        pos += len(el)
    tag_offsets = []
    tags = []
    for k in range(n):
        tag_offsets.append(pos)
        tags.append(struct.pack("<HHI", 0x4152, 0, 1700000000 + k))
        pos += 8
    head = struct.pack("<HHHIIIIII", 0x4949, 0x0197, 0x0210, 0x4122, 0x4152, n, n,
                       offsets_at, 1)
    with open(path, "wb") as f:
        f.write(head + dims + struct.pack(f"<{n}I", *data_offsets)
                + struct.pack(f"<{n}I", *tag_offsets) + b"".join(elements) + b"".join(tags))


# -- Thermo Fisher Velox EMD ----------------------------------------------------------------
def write_velox_emd(path, movie: np.ndarray, pixel_size_nm: float, frame_time_s: float) -> None:
    """A Velox EMD file with one image stack (``/Data/Image/<id>/Data``, (H, W, N)) and the
    JSON metadata Velox writes beside it (one column per frame)."""
    import h5py

    n, h, w = movie.shape
    meta = {
        "BinaryResult": {"PixelSize": {"width": repr(pixel_size_nm * 1e-9),
                                       "height": repr(pixel_size_nm * 1e-9)},
                         "PixelUnitX": "m", "PixelUnitY": "m",
                         "Offset": {"x": "0", "y": "0"}, "DetectorIndex": "0"},
        "Scan": {"FrameTime": repr(frame_time_s)},
        "Detectors": {"Detector-0": {"DetectorName": "BM-Ceta", "ExposureTime": "0.04"}},
        "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1700000000"}},
        "CustomProperties": {},
    }
    raw = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with h5py.File(path, "w") as f:
        version = json.dumps({"format": "Velox", "version": "11"}).encode()
        f.create_dataset("Version", data=np.array([version]))
        g = f.create_group("Data/Image/6fdbde41eecc4b9fb3e2d4d5e8d6b6d1")
        g.create_dataset("Data", data=np.ascontiguousarray(movie.transpose(1, 2, 0)),
                         chunks=(h, w, 1))
        g.create_dataset("Metadata", data=np.repeat(raw[:, None], n, axis=1))
