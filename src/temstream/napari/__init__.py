"""The napari plugin (npe2; ``pip install 'temstream[napari]'``, manifest ``napari.yaml``).

- reader (:func:`~temstream.napari._reader.get_reader`): a recording opens as an Image layer of
  the raw frames (lazy: one frame is read when it is shown), Labels (and one Labels layer per
  layer of two-layer models, from ``/data/layer_labels``), Tracks from the particle table and
  Points carrying every column of the table as features;
- widget (:func:`~temstream.napari._widget.segment_widget`): runs a temstream model, the
  instances and the linker on an open image layer and adds the labels, tracks and points.

Only this subpackage imports napari, and it draws with napari, never with the pyqtgraph
dashboard (``temstream.gui``). See ``docs/napari.md``.
"""

from temstream.napari._reader import get_reader, read_recording

__all__ = ["get_reader", "read_recording"]
