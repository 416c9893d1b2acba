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

#: outline rules of the instance stage (``instances.outline``) -> tool tip
OUTLINE_CHOICES = {
    "expected-dice": "each frame's outlines at the threshold its own probabilities expect "
                     "to fit best (U-Net default)",
    "threshold": "outlines at the threshold in the box",
    "half-contrast": "outlines redrawn from the frame at half of each particle's contrast "
                     "(as drawn by hand; ~20 ms per 512² frame)",
    "edge-model": "outlines at each particle's fitted true edge (in-focus images; sizes with "
                  "an uncertainty; ~20 ms per 512² frame)",
}


class ControlBar(QtWidgets.QToolBar):
    """Tool bar with the dashboard's actions; the live pipeline settings sit on a second one,
    :attr:`settings`.

    Attributes
    ----------
    actions_by_name : dict of str -> QAction
    settings : QToolBar
        The threshold, outline rule and search range boxes.
    threshold, search_range : QDoubleSpinBox
        Emit ``editingFinished``-style changes through :attr:`threshold_changed` and
        :attr:`search_range_changed`.
    outline : QComboBox
        The outline rule (:data:`OUTLINE_CHOICES`), through :attr:`outline_changed`.
    """

    threshold_changed = QtCore.Signal(float)
    outline_changed = QtCore.Signal(str)
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
        # the pipeline's settings on a tool bar of their own (a second row at 1500 px)
        self.settings = settings = QtWidgets.QToolBar("settings", parent)
        settings.setMovable(False)
        settings.addWidget(QtWidgets.QLabel(" threshold "))
        self.threshold = QtWidgets.QDoubleSpinBox()
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setKeyboardTracking(False)
        settings.addWidget(self.threshold)
        settings.addWidget(QtWidgets.QLabel(" outline rule "))
        self.outline = QtWidgets.QComboBox()
        for rule, tip in OUTLINE_CHOICES.items():
            self.outline.addItem(rule)
            self.outline.setItemData(self.outline.count() - 1, tip,
                                     QtCore.Qt.ItemDataRole.ToolTipRole)
        settings.addWidget(self.outline)
        settings.addWidget(QtWidgets.QLabel(" search range (px) "))
        self.search_range = QtWidgets.QDoubleSpinBox()
        self.search_range.setRange(0.0, 500.0)
        self.search_range.setSpecialValueText("auto")  # 0: from the data
        self.search_range.setToolTip("largest displacement linked between frames; "
                                     "auto: from the displacements seen")
        self.search_range.setSingleStep(1.0)
        self.search_range.setDecimals(1)
        self.search_range.setKeyboardTracking(False)
        settings.addWidget(self.search_range)
        self.threshold.valueChanged.connect(self.threshold_changed.emit)
        self.outline.textActivated.connect(self.outline_changed.emit)
        self.search_range.valueChanged.connect(self.search_range_changed.emit)

    def action(self, name: str) -> QtGui.QAction:
        return self.actions_by_name[name]

    def checked(self, name: str) -> bool:
        return self.actions_by_name[name].isChecked()
