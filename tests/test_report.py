"""The metrics CSV: one writer, whose columns are ``CSV_FIELDS`` and whose rows are ``StepReport.row()``."""

import csv
import io

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.common.report import CSV_FIELDS, metrics_csv, write_metrics_csv


def test_metrics_csv_has_one_row_per_report_in_the_report_columns(tmp_path):
    trainer = MetaTrainer(ExperimentConfig(meta_batch=3, inner_steps=2, val_every=2, val_tasks=4))
    reports = [trainer.step() for _ in range(3)]
    text = metrics_csv(reports)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert [r["meta_loss"] for r in rows] == [str(rep.meta_loss) for rep in reports]
    assert {r["lam"] for r in rows} == {str(trainer.config.lam)}
    write_metrics_csv(tmp_path / "m.csv", reports)
    assert (tmp_path / "m.csv").read_text(encoding="utf-8") == text


def test_metrics_csv_of_no_reports_is_the_header_alone():
    assert metrics_csv([]) == ",".join(CSV_FIELDS) + "\n"
