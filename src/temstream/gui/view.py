"""The main image view: frame, label overlay, track tails, centroids, scale bar, hover readout.

Every item is updated from the GUI thread only (by :class:`~temstream.gui.dashboard.Dashboard`).
Pixel (row i, column j) covers ``[j, j+1] x [i, i+1]`` in view coordinates, so particle centroids
(pixel-index coordinates) are drawn at ``+0.5``.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from temstream.gui.render import label_lut
from temstream.gui.stats import nice_length

TAIL_PEN = (255, 200, 40, 200)
CENTROID_PEN = (0, 255, 120, 230)
HOVER_RADIUS_PX = 6.0  # screen pixels beyond the particle's radius that still count as on it


class FrameView(pg.GraphicsLayoutWidget):
    """A locked-aspect view of the latest frame with its overlays."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setBackground("k")
        self.vb: pg.ViewBox = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setLookupTable(label_lut())
        self.tails = pg.PlotCurveItem(pen=pg.mkPen(TAIL_PEN, width=1), skipFiniteCheck=True,
                                      antialias=False)
        self.centroids = pg.ScatterPlotItem(pxMode=True, size=7, symbol="+",
                                            pen=pg.mkPen(CENTROID_PEN, width=1.5), brush=None,
                                            antialias=False)
        self.scale_rect = QtWidgets.QGraphicsRectItem()
        self.scale_rect.setBrush(pg.mkBrush("w"))
        self.scale_rect.setPen(pg.mkPen(None))
        self.scale_text = pg.TextItem("", color="w", anchor=(0.5, 1.0))
        self.hover = pg.TextItem("", color=(255, 255, 255), fill=pg.mkBrush(0, 0, 0, 170),
                                 anchor=(0.0, 1.0))
        self.banner = pg.TextItem("", color=(255, 255, 255), fill=pg.mkBrush(200, 30, 30, 200),
                                  anchor=(0.0, 0.0))
        for z, item in enumerate((self.image, self.overlay, self.tails, self.centroids,
                                  self.scale_rect, self.scale_text, self.hover, self.banner)):
            item.setZValue(z)
            self.vb.addItem(item)
        self.message = pg.TextItem("", color=(255, 230, 120), fill=pg.mkBrush(0, 0, 0, 200),
                                   anchor=(0.0, 0.0))
        self.message.setZValue(10)
        self.vb.addItem(self.message)
        self.scale_rect.hide()
        self.scale_text.hide()
        self.hover.hide()
        self.message.hide()
        self.banner.hide()
        self._shape: tuple[int, int] | None = None
        self._scale_key: tuple | None = None
        self._table: dict[str, np.ndarray] = {}
        self.pixel_size_nm: float | None = None
        self._mouse = pg.SignalProxy(self.scene().sigMouseMoved, rateLimit=30,
                                     slot=self._on_mouse_moved)

    # -- items -------------------------------------------------------------------------------
    def set_image(self, image_u8: np.ndarray) -> None:
        """Show a uint8 display image (levels 0..255; the QImage wraps the buffer)."""
        self.image.setImage(image_u8, autoLevels=False, levels=(0, 255))
        shape = image_u8.shape[:2]
        if shape != self._shape:
            self._shape = shape
            self.vb.setRange(xRange=(0, shape[1]), yRange=(0, shape[0]), padding=0)
            self._scale_key = None
            self.update_scale_bar()

    def set_message(self, text: str) -> None:
        """A note over the top-left corner of the frame ("" hides it), e.g. what a results
        feed does not carry."""
        if text == self.message.toPlainText() and self.message.isVisible() == bool(text):
            return
        self.message.setText(text)
        self.message.setPos(0, 0)
        self.message.setVisible(bool(text))

    def set_banner(self, text: str) -> None:
        """A red label at the frame's top left (a bad frame, a stage jump); "" hides it."""
        if not text:
            self.banner.hide()
            return
        if self.banner.toPlainText() != text:
            self.banner.setText(text)
        self.banner.setPos(0, 0)
        self.banner.show()

    def set_overlay(self, indices_u8: np.ndarray | None, lut: np.ndarray | None = None) -> None:
        """Colour indices (0 transparent) through the label LUT (or ``lut``, e.g. the two-layer
        colours), or None to hide."""
        if indices_u8 is None:
            self.overlay.hide()
            return
        key = None if lut is None else id(lut)
        if key != getattr(self, "_lut_key", None):
            self._lut_key = key
            self.overlay.setLookupTable(label_lut() if lut is None else lut)
        self.overlay.setImage(indices_u8, autoLevels=False, levels=(0, 255))
        self.overlay.show()

    def set_centroids(self, x: np.ndarray, y: np.ndarray) -> None:
        self.centroids.setData(x=np.asarray(x) + 0.5, y=np.asarray(y) + 0.5)

    def set_tails(self, x: np.ndarray, y: np.ndarray, connect: np.ndarray) -> None:
        self.tails.setData(x=x + 0.5, y=y + 0.5, connect=connect)

    def set_table(self, table: dict[str, np.ndarray]) -> None:
        """The particle table the hover readout searches."""
        self._table = table

    def set_pixel_size(self, pixel_size_nm: float | None) -> None:
        if pixel_size_nm is not None and not (pixel_size_nm > 0):
            pixel_size_nm = None
        if pixel_size_nm != self.pixel_size_nm:
            self.pixel_size_nm = pixel_size_nm
            self.update_scale_bar()

    def update_scale_bar(self) -> None:
        """A bar of a round number of nm, ~1/5 of the width, bottom right (hidden without a
        pixel size)."""
        key = (self._shape, self.pixel_size_nm)
        if key == self._scale_key:
            return
        self._scale_key = key
        if self._shape is None or self.pixel_size_nm is None:
            self.scale_rect.hide()
            self.scale_text.hide()
            return
        h, w = self._shape
        length_nm = nice_length(w * self.pixel_size_nm / 5.0)
        length_px = length_nm / self.pixel_size_nm
        thick = max(2.0, h / 120.0)
        x1, y1 = w - w / 25.0, h - h / 25.0
        self.scale_rect.setRect(QtCore.QRectF(x1 - length_px, y1 - thick, length_px, thick))
        self.scale_text.setText(f"{length_nm:g} nm")
        self.scale_text.setPos(x1 - length_px / 2.0, y1 - 1.5 * thick)
        self.scale_rect.show()
        self.scale_text.show()

    # -- hover --------------------------------------------------------------------------------
    def particle_at(self, x: float, y: float, radius_px: float = 0.0) -> int | None:
        """Row of the particle under view point (x, y), or None."""
        t = self._table
        if "x" not in t or len(t["x"]) == 0:
            return None
        px = np.asarray(t["x"], dtype=np.float64) + 0.5
        py = np.asarray(t["y"], dtype=np.float64) + 0.5
        d2 = (px - x) ** 2 + (py - y) ** 2
        i = int(np.argmin(d2))
        area = float(t["area"][i]) if "area" in t else 0.0
        reach = math.sqrt(max(area, 0.0) / math.pi) + radius_px
        return i if d2[i] <= reach * reach else None

    def hover_text(self, row: int) -> str:
        t = self._table
        pid = int(t["particle"][row]) if "particle" in t else -1
        parts = [f"id {pid}" if pid >= 0 else "unlinked"]
        if "area" in t:
            area = float(t["area"][row])
            text = f"area {area:.0f} px"
            if self.pixel_size_nm:
                text += f" ({area * self.pixel_size_nm ** 2:.0f} nm\N{SUPERSCRIPT TWO})"
            parts.append(text)
        if "angle" in t:
            parts.append(f"angle {math.degrees(float(t['angle'][row])):.1f}\N{DEGREE SIGN}")
        return "\n".join(parts)

    def _on_mouse_moved(self, event) -> None:
        pos = event[0]
        if not self.vb.sceneBoundingRect().contains(pos):
            self.hover.hide()
            return
        p = self.vb.mapSceneToView(pos)
        px_per_view = self.vb.viewPixelSize()[0] or 1.0
        row = self.particle_at(p.x(), p.y(), HOVER_RADIUS_PX * px_per_view)
        if row is None:
            self.hover.hide()
            return
        self.hover.setText(self.hover_text(row))
        self.hover.setPos(p.x(), p.y())
        self.hover.show()

    def fit(self) -> None:
        """Show the whole frame."""
        if self._shape is not None:
            h, w = self._shape
            self.vb.setRange(xRange=(0, w), yRange=(0, h), padding=0)

    def map_to_widget(self, x: float, y: float) -> QtCore.QPoint:
        """Widget pixel of view point (x, y) (for tests and snapshots)."""
        scene = self.vb.mapViewToScene(QtCore.QPointF(x, y))
        return self.mapFromScene(scene)
