"""The pyqtgraph dashboard (the only subpackage that imports Qt)."""
