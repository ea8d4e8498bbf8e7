"""The adaptation card of the live task family: the curves card for regression (sinusoids), the images card
for classification. Both edit the preview task and ask for new ones the same way; the worker's preview
result says which card shows it."""

from __future__ import annotations

from PySide6.QtWidgets import QStackedWidget, QWidget

from app.model.messages import ClassPreviewResult, PreviewResult
from app.plots.adaptation import AdaptationCard
from app.plots.classification import ClassificationCard
from app.worker.thread import WorkerThread


class TaskView(QStackedWidget):
    """Holds ``curves`` (an :class:`AdaptationCard`) and ``images`` (a :class:`ClassificationCard`) and shows
    the one the latest preview is for."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("task_view")
        self.curves = AdaptationCard()
        self.images = ClassificationCard()
        self.addWidget(self.curves)
        self.addWidget(self.images)

    @property
    def cards(self) -> tuple[AdaptationCard, ClassificationCard]:
        return self.curves, self.images

    def connect_worker(self, worker_thread: WorkerThread) -> None:
        for card in self.cards:
            card.task_edited.connect(worker_thread.set_preview_task)
            card.resample_requested.connect(worker_thread.resample_preview)

    def show_result(self, result: PreviewResult | ClassPreviewResult) -> None:
        if isinstance(result, ClassPreviewResult):
            self.setCurrentWidget(self.images)
            self.images.show_result(result)
        else:
            self.setCurrentWidget(self.curves)
            self.curves.show_result(result)

    def resample(self) -> None:
        """A new preview task of the card on show."""
        card = self.currentWidget()
        assert isinstance(card, (AdaptationCard, ClassificationCard))
        card.resample()
