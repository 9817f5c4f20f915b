"""The one renderer: a `ReportTable` as Markdown, LaTeX and CSV, written atomically side by side.

The not-comparable label, when set, is the first thing a reader sees in every format: a bold line
in Markdown, a comment and a caption note in LaTeX, a `# label` line in CSV.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from bemseg.atomic import write_text
from bemseg.reports.report_table import ReportTable

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "Δ": r"$\Delta$",
          "λ": r"$\lambda$", "−": r"$-$", "×": r"$\times$", "<": r"$<$", ">": r"$>$", "|": r"$|$"}


def _left_aligned(cells: list[str]) -> bool:
    """Text columns (any letter in a cell) are left-aligned, number columns right-aligned."""
    return any(any(ch.isalpha() for ch in cell) for cell in cells)


def _alignments(table: ReportTable) -> list[bool]:
    return [_left_aligned([row[i] for row in table.rows]) for i in range(len(table.columns))]


def to_markdown(table: ReportTable) -> str:
    """A GitHub-flavoured Markdown table with the label, the title above and the notes below."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    lines = [f"**{table.label}**", ""] if table.label else []
    lines += [f"**{table.title}**", "", line(table.columns),
              "| " + " | ".join(":--" if left else "--:" for left in _alignments(table)) + " |"]
    lines += [line(row) for row in table.rows]
    if table.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped and ±, Δ, λ, −, × as math."""
    return "".join(_LATEX.get(ch, ch) for ch in text)


def to_latex(table: ReportTable) -> str:
    """A booktabs `table` environment (needs \\usepackage{booktabs,graphicx}); notes follow the tabular."""
    caption = latex_escape(table.title) + (rf" \textbf{{{latex_escape(table.label)}}}" if table.label else "")
    spec = "".join("l" if left else "r" for left in _alignments(table))
    lines = [f"% {table.label}"] if table.label else []
    lines += [r"% requires \usepackage{booktabs,graphicx}", r"\begin{table}[htbp]", r"\centering",
              rf"\caption{{{caption}}}", rf"\label{{tab:{table.name}}}", r"\resizebox{\textwidth}{!}{%",
              rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
              " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(cell) for cell in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}}"]
    if table.notes:
        lines += [r"\par\smallskip\footnotesize"] + [latex_escape(note) + r"\par" for note in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(table: ReportTable) -> str:
    """CSV with `# ` comment lines first: the label (first line, when set), the title, the notes."""
    buffer = io.StringIO()
    comments = ([table.label] if table.label else []) + [table.title, *table.notes]
    buffer.writelines(f"# {comment}\n" for comment in comments)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return buffer.getvalue()


def write_table(table: ReportTable, out_prefix: str | os.PathLike[str]) -> list[Path]:
    """Write PREFIX.md, PREFIX.tex and PREFIX.csv atomically; return their paths."""
    paths = []
    for suffix, render in (("md", to_markdown), ("tex", to_latex), ("csv", to_csv)):
        path = Path(f"{os.fspath(out_prefix)}.{suffix}")
        write_text(path, render(table))
        paths.append(path)
    return paths
