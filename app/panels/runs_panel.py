"""The Runs panel: every run in the runs folder, ticked to overlay, renamed in place, continued, compared,
deleted (to the folder's ``.trash``). With "group seeds" on, ticked runs that differ only by seed overlay
as their mean with a 95% band.

Listing reads only each run's record and the tail of its metrics, in a pool thread; the live run's row
follows the window's own numbers between listings. The panel holds no run state: the window tells it which
run is live and acts on what it asks for.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.panels.overlays import Overlay, run_colour
from app.panels.run_difference import difference_text, shown_cell
from app.panels.run_overlays import OtherRun, overlay_items
from app.toolkit.background import in_background
from imaml_core.common.config import ExperimentConfig
from imaml_core.experiments.runs import ConfigCache, RunStore, RunSummary, SeedGroup, seed_groups

COLUMNS = (  # header, RunSummary field
    ("", "id"),
    ("name", "name"),
    ("task", "task"),
    ("method", "method"),
    ("λ", "lam"),  # the current λ: a learned one at its last save, marked
    ("CG iterations", "cg_steps"),
    ("inner steps", "inner_steps"),
    ("iterations", "iterations"),
    ("last val loss", "val_loss"),
    ("val accuracy", "val_accuracy"),
    ("status", "status"),
    ("parent", "parent"),
)
NAME_COLUMN = 1
RESIZE_ROWS = 30  # rows whose text sizes the columns
Index = QModelIndex | QPersistentModelIndex


class RunsModel(QAbstractTableModel):
    """Rows of ``RunSummary``; column 0 is the overlay tick with the run's colour, the name is editable."""

    ticks_changed = Signal()
    renamed = Signal(str, str)  # run id, new name
    refused = Signal(str)  # why a run cannot be overlaid

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RunSummary] = []
        self.ticked: list[str] = []  # overlay order
        self.live_task = "sinusoid"  # the live run's task family: overlays show runs of this one
        self.live: str | None = None
        self._names: dict[str, str] = {}
        self._rows_at: dict[str, int] = {}
        self._others: dict[str, OtherRun] = {}  # runs of other folders named as parents (a sweep's trials)
        self.groups: dict[str, SeedGroup] | None = None  # run id to its seed group, while seed groups are on

    def set_rows(self, rows: list[RunSummary]) -> None:
        if self._comparable(rows) == self._comparable(self.rows):
            return  # nothing new on disk (the live row's numbers follow the window meanwhile)
        self.beginResetModel()
        self.rows = rows
        self._names = {r.id: r.name for r in rows}
        self._rows_at = {r.id: i for i, r in enumerate(rows)}
        known = set(self._names) | {r for r, other in self._others.items() if other.path}
        self.ticked = [r for r in self.ticked if r in known]
        self.endResetModel()

    def _comparable(self, rows: list[RunSummary]) -> list[object]:
        """Rows as a listing compares them: the live row by what only the disk knows (name, parentage)."""
        return [(r.id, r.name, r.parent, r.fork_iteration) if r.id == self.live else r for r in rows]

    def has_rows(self, ids: list[str]) -> bool:
        """Whether every run of ``ids`` is listed."""
        return all(run_id in self._rows_at for run_id in ids)

    def remember_name(self, run_id: str, name: str, path: str = "") -> None:
        """The name to show for ``run_id`` as a parent when it is not listed here; with its folder it can be
        ticked (overlaid) too."""
        if name or path:
            self._others[run_id] = OtherRun(name, path)

    def overlays(self) -> list[Overlay]:
        """What the ticked runs but the live one overlay (the live run is drawn already)."""
        rows = {r.id: r for r in self.rows}
        ticked = [r for r in self.ticked if r != self.live]
        return overlay_items(ticked, rows, self._others, self.colour, self.groups)

    def colour(self, run_id: str) -> str:
        """The run's colour, by its row (asked for every painted row, so a lookup, not a search)."""
        return run_colour(self._rows_at.get(run_id, len(self.rows)))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 (Qt API)
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == 0 and self.rows[index.row()].readable:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        if index.column() == NAME_COLUMN and self.rows[index.row()].readable:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.rows[index.row()]
        column = COLUMNS[index.column()][1]
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == 0 and row.readable:
            return Qt.CheckState.Checked if row.id in self.ticked else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return QColor(self.colour(row.id))
        if role == Qt.ItemDataRole.FontRole and row.id == self.live:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.reason or row.path
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole) and index.column() > 0:
            value = getattr(row, column)
            if column == "status" and row.id == self.live:
                return f"{value} (live)"
            if column == "task":
                return {"glyphs": "glyphs (synthetic)"}.get(str(value), value or "sinusoid")
            if column == "val_accuracy" and value is not None:
                return f"{100 * value:.1f}%"
            if column == "lam" and row.lam_learned and row.current_lam is not None:
                return f"{row.current_lam:.3g} learned"  # the geometric mean of the learned λ at the last save
            if column == "parent" and value:
                name = self._names.get(value) or self._others.get(value, OtherRun("")).name or value
                return name + (f" @ {row.fork_iteration}" if row.fork_iteration else "")
            return shown_cell(value)
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == 0:
            on = Qt.CheckState(value) == Qt.CheckState.Checked
            self.set_ticked([r for r in self.ticked if r != row.id] + ([row.id] if on else []))
            return True
        if role == Qt.ItemDataRole.EditRole and index.column() == NAME_COLUMN and str(value).strip():
            self.renamed.emit(row.id, str(value).strip())
            return True
        return False

    def set_ticked(self, ids: list[str]) -> None:
        """Overlay these runs; a run of another task family than the live run's is refused with the reason
        (its losses are not on the same scale: a sinusoid's MSE beside Omniglot's cross-entropy)."""
        known = {r.id: r for r in self.rows if r.readable}
        elsewhere = {r for r, other in self._others.items() if other.path and r not in known}
        ticked = [r for r in dict.fromkeys(ids) if r in known or r in elsewhere]
        other = [known[r] for r in ticked if r in known and (known[r].task or "sinusoid") != self.live_task]
        for row in other:
            self.refused.emit(
                f"{row.name} is not overlaid: it is a {row.task} run and the live run is {self.live_task}; overlays "
                "compare runs of one task family"
            )
        ticked = [r for r in ticked if r in elsewhere or known[r] not in other]
        if ticked != self.ticked:
            self.ticked = ticked
            self.dataChanged.emit(self.index(0, 0), self.index(max(0, len(self.rows) - 1), 0))
            self.ticks_changed.emit()

    def update_live(
        self, iterations: int, val_loss: float | None, running: bool, config: ExperimentConfig, accuracy: float | None
    ) -> None:
        """The live run's numbers and settings from the window, between listings (which lag behind them)."""
        for i, row in enumerate(self.rows):
            if row.id != self.live:
                continue
            new = _replace(
                row,
                iterations=iterations,
                val_loss=val_loss,
                val_accuracy=accuracy,
                status="running" if running else "paused",
                lam=config.lam,
                cg_steps=config.cg_steps,
                inner_steps=config.inner_steps,
            )
            if new != row:
                self.rows[i] = new
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))


class RunsPanel(QWidget):
    """The table with its buttons and the config difference of two selected runs."""

    overlay_changed = Signal()
    continue_requested = Signal(str)  # run folder
    rename_requested = Signal(str, str)  # run id, name
    delete_requested = Signal(str)  # run id
    open_folder_requested = Signal()
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runs_panel")
        self.store: RunStore | None = None
        self._listing = False
        self._again = False
        self._configs: ConfigCache = {}  # the runs' settings for seed groups, kept between listings
        self.model = RunsModel()
        self.model.ticks_changed.connect(self.overlay_changed)
        self.model.renamed.connect(self.rename_requested)
        self.model.refused.connect(self.failed)
        self.table = QTableView()
        self.table.setObjectName("runs_table")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setResizeContentsPrecision(RESIZE_ROWS)  # sizing every row of a big folder stalls the GUI
        header.setSectionResizeMode(NAME_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._show_difference)

        self.folder = QLabel()
        self.folder.setObjectName("runs_folder")
        self.folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.folder, 1)
        for name, text, tip, slot in (
            ("button_open_runs", "Folder…", "Open another runs folder", self.open_folder_requested.emit),
            ("button_continue_run", "Continue", "Continue the selected run in the window, exactly", self._continue),
            ("button_delete_run", "Delete", "Move the selected runs to the folder's .trash", self._delete),
        ):
            b = QPushButton(text)
            b.setObjectName(name)
            b.setToolTip(tip)
            b.clicked.connect(lambda _c=False, s=slot: s())
            buttons.addWidget(b)
        self.group_seeds = QCheckBox("group seeds")
        self.group_seeds.setObjectName("check_group_seeds")
        self.group_seeds.setToolTip("Overlay ticked runs that differ only by seed as their mean with a 95% band")
        self.group_seeds.toggled.connect(self._group_seeds_toggled)
        buttons.addWidget(self.group_seeds)
        self.diff = QLabel("Tick runs to overlay them; select two to compare their settings.")
        self.diff.setObjectName("runs_diff")
        self.diff.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.diff)

    # -- what the window tells it -------------------------------------------------------------------
    def set_store(self, store: RunStore) -> None:
        self.store = store
        self.folder.setText(str(store.root))
        self.model.set_rows([])
        self.refresh()

    def set_live(self, run_id: str | None) -> None:
        self.model.live = run_id
        self.refresh()

    def refresh(self) -> None:
        """List the folder again, in a pool thread (one listing at a time; a request meanwhile re-lists)."""
        if self.store is None:
            return
        if self._listing:
            self._again = True
            return
        self._listing = True
        store, configs = self.store, self._configs if self.group_seeds.isChecked() else None
        in_background(lambda: _list(store, configs), lambda rows, s=store: self._listed(s, rows), self)

    def list_now(self) -> None:
        """List the folder in this thread: a script that overlays runs it has just made needs their rows
        before the next listing in the background arrives."""
        if self.store is not None:
            self._show_rows(self.store, _list(self.store, self._configs if self.group_seeds.isChecked() else None))

    def overlaid(self) -> list[Overlay]:
        """What the ticked runs but the live one overlay: a run each, or a seed group's mean and band."""
        return self.model.overlays()

    def selected(self) -> list[RunSummary]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.rows[i] for i in rows]

    # -- internals ----------------------------------------------------------------------------------
    def _listed(self, store: RunStore, rows: object) -> None:
        self._listing = False
        self._show_rows(store, rows)
        if self._again:
            self._again = False
            self.refresh()

    def _show_rows(self, store: RunStore, rows: object) -> None:
        if store is not self.store:
            return
        if isinstance(rows, str):
            self.failed.emit(rows)
            return
        assert isinstance(rows, tuple)
        rows, groups = rows
        selected = {r.id for r in self.selected()}
        self.model.set_rows(rows)
        self.model.groups = groups if self.group_seeds.isChecked() else None
        for i, row in enumerate(self.model.rows):
            if row.id in selected:
                self.table.selectRow(i)
        self.overlay_changed.emit()

    def _group_seeds_toggled(self, on: bool) -> None:
        """Seed groups are found while listing (each run's settings are read then): list again."""
        if not on:
            self.model.groups = None
            self.overlay_changed.emit()
        self.refresh()

    def _continue(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1 or not chosen[0].readable:
            self.failed.emit("Select one readable run to continue.")
            return
        self.continue_requested.emit(chosen[0].path)

    def _delete(self) -> None:
        for row in self.selected():
            self.delete_requested.emit(row.id)

    def _show_difference(self) -> None:
        chosen = self.selected()
        if len(chosen) != 2:
            self.diff.setText("Tick runs to overlay them; select two to compare their settings.")
            return
        self.diff.setText(difference_text(chosen[0], chosen[1]))


def _list(store: RunStore, configs: ConfigCache | None) -> tuple[list[RunSummary], dict[str, SeedGroup]] | str:
    """The folder's rows and, given a cache of settings, each run's seed group (a listing here and one in a
    pool thread may share the cache: each entry is one dict read or write)."""
    if not store.root.exists():
        return [], {}  # the window's runs folder before its first run is recorded: made by the recorder
    try:
        rows = store.list()
        groups = seed_groups(rows, configs) if configs is not None else []
        return rows, {run_id: g for g in groups for run_id in g.ids}
    except Exception as exc:  # noqa: BLE001 - runs in a pool thread; the banner shows it
        return f"cannot list {store.root}: {exc}"


def _replace(row: RunSummary, **changes: Any) -> RunSummary:
    from dataclasses import replace

    return replace(row, **changes)
