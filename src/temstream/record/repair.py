"""Opening recordings, and repairing those whose writer failed or was killed in mid-write.

:func:`open_recording` opens any recording read-only (also one still being written in SWMR
mode, or one whose writer was killed: then a repaired temporary copy, the file itself is never
written); :func:`salvage` cuts a recording the writer owns back to what reads back.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py

log = logging.getLogger(__name__)


def salvage(path: str | Path, n_frames: int | None, rows: tuple[int, int] | None = None,
            error: str = "") -> bool:
    """Make a recording whose writer failed mid-write open again, cut to ``n_frames`` frames.

    Restores a truncated end of file (sparse extension to the end the superblock records),
    then shrinks the frame stacks, time dims and tables to the last flush (``rows`` =
    particle and frames_info rows then). ``n_frames=None`` (not known, when a reader
    repairs the file later) drops the last frame of each stack, which may be partly written. Returns True when the file opens afterwards.
    Files written in SWMR mode are left as they are (open them with ``swmr=True``).
    """
    import re

    path = Path(path)
    try:
        h5py.File(path, "r").close()
    except OSError as exc:
        m = re.search(r"stored_eof = (\d+)", str(exc))
        if not m:
            return False
        try:
            os.truncate(path, int(m.group(1)))
        except OSError:  # e.g. a file-size limit: open_recording repairs it later
            return False
    try:
        with h5py.File(path, "r+") as f:
            for name in list(f.get("data", {})):
                g = f["data"][name]
                if n_frames is None:  # unknown: drop the last frame, maybe partly written
                    stacks = [f["data"][k]["data"].shape[0] for k in f["data"]
                              if "data" in f["data"][k]]
                    n_frames = max(0, min(stacks, default=1) - 1)
                for key in ("data", "dim1"):
                    if key in g and g[key].maxshape[0] is None and g[key].shape[0] > n_frames:
                        g[key].resize(n_frames, axis=0)
            for key, n in zip(("particles", "frames_info"), rows or ()):
                if key in f and f[key].shape[0] > n:
                    f[key].resize(n, axis=0)
            f.attrs["recording_error"] = error
    except Exception:  # noqa: BLE001 - the disk may refuse even this: the file still opens
        pass
    try:
        h5py.File(path, "r").close()
        return True
    except OSError:
        return False


def _readable_extent(f: h5py.File) -> tuple[int, tuple[int, int]] | None:
    """``(frames, (particle rows, frames_info rows))`` that read back from a recording whose
    writer did not close it, when the end of a stack or table does not; None when all do.

    A writer killed in the middle of a flush can leave the chunk index on disk ahead of the
    end of file the superblock records; the last chunks then fail to read ("addr overflow")
    although the file opens.
    """
    def readable(ds) -> int:
        n = ds.shape[0]
        step = ds.chunks[0] if ds.chunks else 1
        while n > 0:
            try:
                ds[n - 1]
                return n
            except OSError:
                n = (n - 1) // step * step  # the whole chunk holding n - 1 is lost
        return 0

    stacks = [f["data"][k][key] for k in f.get("data", {}) for key in ("data", "dim1")
              if key in f["data"][k] and f["data"][k][key].maxshape[0] is None]
    tables = [f[k] for k in ("particles", "frames_info") if k in f]
    frames = [readable(ds) for ds in stacks]
    rows = [readable(ds) for ds in tables]
    if all(n == ds.shape[0] for n, ds in zip(frames + rows, stacks + tables)):
        return None
    n_frames = min(frames, default=0)
    rows = tuple(rows) + (0,) * (2 - len(rows))
    return n_frames, rows


def _extend_eoa_to_eof(path: Path) -> bool:
    """Set the end-of-file address a version-0 superblock records to the file's size (what
    ``h5clear --increment=0`` does), so that a writer can open a file whose chunk index got
    ahead of that address again: its next flush writes back index nodes that lie beyond it.
    Returns False for other superblock versions (SWMR files, left alone)."""
    import struct

    size = path.stat().st_size
    with open(path, "r+b") as fh:
        head = fh.read(48)
        if len(head) < 48 or head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] != 0:
            return False
        if head[13] != 8:  # size of offsets: this layout holds for 8-byte addresses only
            return False
        eoa = struct.unpack("<Q", head[40:48])[0]
        if size > eoa:
            fh.seek(40)
            fh.write(struct.pack("<Q", size))
    return True


def _in_use(path: Path) -> bool:
    """True when another process holds a lock on the file (a live writer: never repair)."""
    import fcntl

    with open(path, "rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def repair_plan(path: str | Path) -> tuple[int | None, tuple[int, int] | None, str] | None:
    """What :func:`salvage` would need to do to ``path`` (read-only look): ``(n_frames, rows,
    reason)``, or None when the file opens and reads back as it is (or is not HDF5, or is
    held by a live writer)."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        if "truncated file" in str(exc) and "stored_eof" in str(exc):
            return None, None, "the writer failed mid-write (the file ends early)"
        return None
    try:
        if bool(f.attrs.get("closed_cleanly", True)):
            return None
        cut = _readable_extent(f)
    finally:
        f.close()
    if cut is None or _in_use(path):
        return None
    return cut[0], cut[1], (f"the writer was killed in mid-write; the first {cut[0]} frames "
                            "read back")


def repaired_copy(path: str | Path, plan=None) -> Path:
    """A salvaged temporary copy of the recording ``path`` (the caller removes it); the file
    itself is never written. ``plan`` is :func:`repair_plan`'s answer (looked up if None).

    Raises
    ------
    OSError
        If even the copy cannot be made to open.
    """
    import shutil
    import tempfile

    path = Path(path)
    plan = plan or repair_plan(path) or (None, None, "")
    n_frames, rows, error = plan
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, prefix=f"{path.stem}.repaired.")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        shutil.copyfile(path, tmp_path)
        if n_frames is not None:
            _extend_eoa_to_eof(tmp_path)  # else cutting back cannot flush the index nodes
        if not salvage(tmp_path, n_frames, rows, error=error):
            raise OSError(f"{path}: unable to open or repair this HDF5 file")
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    log.warning("%s: %s; reading a repaired copy (the file itself is left as it is)", path,
                error)
    return tmp_path


def open_recording(path: str | Path) -> h5py.File:
    """Open a recording read-only, also one that is still being written in SWMR mode or whose
    SWMR writer was killed (those open only with ``swmr=True``).

    The file is never written. A recording whose writer was killed in mid-write (a truncated
    end, or a tail whose chunks do not read back) is salvaged in a temporary copy
    (:func:`repaired_copy`), which is what is returned, already unlinked (the open file keeps
    it readable until closed); its ``repaired_copy`` attribute is then True.
    """
    path = Path(path)
    plan = repair_plan(path)
    if plan is None:
        try:
            return h5py.File(path, "r")
        except OSError as exc:
            if "already open for write" not in str(exc):
                raise
            return h5py.File(path, "r", swmr=True, libver="latest")
    copy = repaired_copy(path, plan)
    try:
        f = h5py.File(copy, "r")
    finally:
        copy.unlink(missing_ok=True)
    f.repaired_copy = True  # type: ignore[attr-defined]
    return f
