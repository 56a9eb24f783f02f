"""Every committed report is what ``fdebench report`` renders from its committed records, with
the current code: ``reports/<suite>/`` from ``results/reference/<suite>/runs.jsonl``."""

from __future__ import annotations

from pathlib import Path

import pytest

from fdebench.report import write_report

ROOT = Path(__file__).resolve().parents[1]
REPORTS, RECORDS = ROOT / "reports", ROOT / "results" / "reference"
SUITES = sorted(p.parent.name for p in REPORTS.glob("*/README.md"))


def test_reports_and_records_have_the_same_layout():
    assert SUITES, "no committed reports"
    assert sorted(p.parent.name for p in RECORDS.glob("*/runs.jsonl")) == SUITES


@pytest.mark.parametrize("suite", SUITES)
def test_the_committed_report_is_what_its_records_render(suite, tmp_path):
    rendered = write_report(RECORDS / suite, tmp_path)
    committed = REPORTS / suite / "README.md"
    assert rendered == tmp_path / suite / "README.md"
    assert rendered.read_text() == committed.read_text(), (
        f"reports/{suite} differs from what its records render: run "
        f"`fdebench report results/reference/{suite}` and commit the result")
    figures = {p.name for p in rendered.parent.glob("*.png")}
    assert figures == {p.name for p in committed.parent.glob("*.png")}
