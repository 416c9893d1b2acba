"""Movies written by the tools users have, read along the right axes with their calibration
(issue 22, item 11): HyperSpy/rosettasciio EMD, ncempy EMD, tifffile ImageJ and OME TIFF,
mrcfile."""

import warnings

import numpy as np
import pytest

from temstream.stream.files import open_movie

N, H, W = 20, 64, 48
PIXEL_NM, FRAME_S = 0.3, 0.05


@pytest.fixture(scope="module")
def movie():
    return (np.arange(N * H * W) % 65521).astype(np.uint16).reshape(N, H, W)


def _hyperspy(path, movie):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(movie)
    t = s.axes_manager.navigation_axes[0]
    t.name, t.scale, t.units = "time", FRAME_S, "s"
    for a in s.axes_manager.signal_axes:
        a.scale, a.units = PIXEL_NM, "nm"
    s.save(path, overwrite=True)


def _ncempy(path, movie):
    import ncempy.io

    with ncempy.io.emd.fileEMD(path, readonly=False) as emd:
        dims = [(np.arange(N) * FRAME_S, "time", "[s]"), (np.arange(H) * PIXEL_NM, "y", "[n_m]"),
                (np.arange(W) * PIXEL_NM, "x", "[n_m]")]
        emd.put_emdgroup("movie", movie, dims)


def _imagej(path, movie):
    import tifffile

    tifffile.imwrite(path, movie, imagej=True, resolution=(1 / PIXEL_NM, 1 / PIXEL_NM),
                     metadata={"unit": "nm", "finterval": FRAME_S, "axes": "TYX"})


def _ome(path, movie):
    import tifffile

    tifffile.imwrite(path, movie, ome=True, metadata={
        "axes": "TYX", "PhysicalSizeX": PIXEL_NM, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": PIXEL_NM, "PhysicalSizeYUnit": "nm", "TimeIncrement": FRAME_S,
        "TimeIncrementUnit": "s"})


def _mrc(path, movie):
    import mrcfile

    with mrcfile.new(path) as m:
        m.set_data(movie)
        m.voxel_size = PIXEL_NM * 10  # Angstrom


@pytest.mark.parametrize("writer, name, has_time", [
    (_hyperspy, "hs.emd", True), (_ncempy, "ncem.emd", True), (_imagej, "ij.tif", True),
    (_ome, "ome.ome.tif", True), (_mrc, "m.mrc", False)])
def test_movies_from_other_tools_read_on_the_right_axes(writer, name, has_time, movie,
                                                        tmp_path):
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        writer(str(path), movie)
    with open_movie(path) as m:
        assert (m.n_frames, m.shape) == (N, (H, W))
        np.testing.assert_array_equal(m[3], movie[3])
        np.testing.assert_array_equal(m[N - 1], movie[N - 1])
        assert m.pixel_size_nm == pytest.approx(PIXEL_NM, rel=1e-4)
        if has_time:
            assert m.frame_time_s == pytest.approx(FRAME_S, rel=1e-4)
