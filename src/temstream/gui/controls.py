"""The control bar: display toggles, live pipeline settings, recording, snapshot."""

from __future__ import annotations

from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

#: action name -> (label, shortcut, checkable, initially checked)
ACTIONS = {
    "pause": ("Pause display", "Space", True, False),
    "labels": ("Labels", "L", True, True),
    "outlines": ("Outlines", "O", True, False),
    "centroids": ("Centroids", "C", True, True),
    "tails": ("Tails", "T", True, True),
    "contrast": ("Auto-contrast", "A", False, False),
    "continuous": ("Continuous contrast", "Shift+A", True, True),
    "fit": ("Fit view", "F", False, False),
    "record": ("Record", "R", True, False),
    "snapshot": ("Snapshot", "S", False, False),
}


class ControlBar(QtWidgets.QToolBar):
    """Tool bar with the dashboard's actions and two spin boxes.

    Attributes
    ----------
    actions_by_name : dict of str -> QAction
    threshold, search_range : QDoubleSpinBox
        Emit ``editingFinished``-style changes through :attr:`threshold_changed` and
        :attr:`search_range_changed`.
    """

    threshold_changed = QtCore.Signal(float)
    search_range_changed = QtCore.Signal(float)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__("controls", parent)
        self.setMovable(False)
        self.actions_by_name: dict[str, QtGui.QAction] = {}
        for name, (label, key, checkable, checked) in ACTIONS.items():
            act = self.addAction(f"{label} [{key}]" if key else label)
            act.setShortcut(key)
            act.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
            act.setCheckable(checkable)
            act.setChecked(checked)
            act.setObjectName(name)
            self.actions_by_name[name] = act
            if name in ("tails", "continuous", "record"):
                self.addSeparator()
        self.addWidget(QtWidgets.QLabel(" threshold "))
        self.threshold = QtWidgets.QDoubleSpinBox()
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setKeyboardTracking(False)
        self.addWidget(self.threshold)
        self.addWidget(QtWidgets.QLabel(" search range (px) "))
        self.search_range = QtWidgets.QDoubleSpinBox()
        self.search_range.setRange(0.5, 500.0)
        self.search_range.setSingleStep(1.0)
        self.search_range.setDecimals(1)
        self.search_range.setKeyboardTracking(False)
        self.addWidget(self.search_range)
        self.threshold.valueChanged.connect(self.threshold_changed.emit)
        self.search_range.valueChanged.connect(self.search_range_changed.emit)

    def action(self, name: str) -> QtGui.QAction:
        return self.actions_by_name[name]

    def checked(self, name: str) -> bool:
        return self.actions_by_name[name].isChecked()
