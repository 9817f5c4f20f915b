"""The one table model every report table is built as, whatever format it is rendered to.

Cells are already-formatted strings (`bemseg.reports.cells`), so Markdown, LaTeX and CSV show
exactly the same numbers and a test can parse any of them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReportTable:
    """A titled grid of string cells with notes, and the not-comparable label when there is one."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    label: str | None = None

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"{self.name}: row {row[:2]} has {len(row)} cells for {len(self.columns)} columns")
