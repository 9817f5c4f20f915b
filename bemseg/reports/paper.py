"""The paper's published numbers, as transcribed under `results/paper/`, and where they contradict each other.

`load_paper` reads the committed transcriptions (never a workflow output, never the paper's text itself).
`consistency_flags` finds what the numbers themselves reveal: a stated mIoU that is not the mean of
its class columns, one method printed with different numbers in two tables, and the two Figure 7
optima that the text puts at one setting with two values. What only the prose contradicts is
typed into `flags.csv` and returned with them, so every report lists the paper's slips next to
the numbers they concern instead of copying them silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from bemseg.data.catalog import ISPRS_CLASSES, LOVEDA
from bemseg.errors import DataError

#: Per-class tables: which dataset they report and hence which class columns they have.
CLASS_TABLES = {"table4": "potsdam", "table5": "loveda", "table6": "potsdam", "table7": "vaihingen"}
_CLASSES = {"potsdam": ISPRS_CLASSES, "vaihingen": ISPRS_CLASSES, "loveda": LOVEDA.class_names}
_NAMES = ("method", "model")
COLUMNS: dict[str, tuple[str, ...]] = {
    "table3": (*_NAMES, "potsdam_miou", "potsdam_oa", "vaihingen_miou", "vaihingen_oa", "loveda_miou",
               "loveda_oa", "gflops", "params_m", "train_hours", "fps"),
    "table4": (*_NAMES, *ISPRS_CLASSES, "miou"),
    "table5": (*_NAMES, *LOVEDA.class_names, "miou"),
    "table6": (*_NAMES, *ISPRS_CLASSES, "miou", "mf1", "oa", "train_hours", "fps"),
    "table7": (*_NAMES, *ISPRS_CLASSES, "miou", "mf1", "oa"),
    "figure7": ("sweep", "lambda1", "lambda2", "miou"),
}
FLAG_COLUMNS = ("id", "where", "statement", "tables_say", "tables")

#: Rounding tolerance: a mean of values printed with two decimals may differ from the printed mean by 0.01.
ROUNDING = 0.011
#: Two printed values of the same quantity must agree exactly (up to float noise).
SAME = 1e-6

#: Pairs of columns that report the same quantity for the same method in two tables.
CROSS_CHECKS: tuple[tuple[str, str, str, str], ...] = (
    ("table3", "potsdam_miou", "table4", "miou"),
    ("table3", "loveda_miou", "table5", "miou"),
    ("table3", "potsdam_miou", "table6", "miou"),
    ("table3", "potsdam_oa", "table6", "oa"),
    ("table3", "train_hours", "table6", "train_hours"),
    ("table3", "fps", "table6", "fps"),
    ("table3", "vaihingen_miou", "table7", "miou"),
    ("table3", "vaihingen_oa", "table7", "oa"),
    *(("table4", column, "table6", column) for column in (*ISPRS_CLASSES, "miou")),
)


@dataclass(frozen=True)
class Flag:
    """One inconsistency of the paper: where it is, what is claimed or checked, the numbers, the tables it touches."""

    id: str
    where: str
    what: str
    values: str
    tables: tuple[str, ...]

    def note(self) -> str:
        """The one-line form used in table notes."""
        return f"Paper inconsistency ({self.where}): {self.what}; {self.values}."


@dataclass(frozen=True)
class PaperNumbers:
    """The paper's Tables 3-7 and Figure 7 optima (percent, as printed) and the manual flags."""

    table3: pd.DataFrame
    table4: pd.DataFrame
    table5: pd.DataFrame
    table6: pd.DataFrame
    table7: pd.DataFrame
    figure7: pd.DataFrame
    flags: list[Flag]

    def table(self, name: str) -> pd.DataFrame:
        """A table by its file stem (`table3` ... `table7`, `figure7`)."""
        return getattr(self, name)

    def models(self, name: str) -> list[str]:
        """The suite models of a table, in the paper's row order."""
        return [m for m in self.table(name)["model"] if m]

    def value(self, name: str, model: str, column: str) -> float:
        """The printed value of `column` for `model` in table `name`; NaN when the paper has none."""
        rows = self.table(name)
        found = rows.loc[rows["model"] == model, column]
        return float(found.iloc[0]) if len(found) else float("nan")

    def method(self, model: str) -> str:
        """The paper's name for a suite model (Table 3's spelling, else Table 6's), or the model name itself."""
        for name in ("table3", "table6"):
            rows = self.table(name)
            found = rows.loc[rows["model"] == model, "method"]
            if len(found):
                return str(found.iloc[0])
        return model

    def class_iou(self, dataset: str) -> dict[str, dict[str, float]]:
        """model -> class -> the paper's IoU on `dataset`, from every per-class table of that dataset."""
        found: dict[str, dict[str, float]] = {}
        for name, table_dataset in CLASS_TABLES.items():
            if table_dataset != dataset:
                continue
            for _, row in self.table(name).iterrows():
                if row["model"] and row["model"] not in found:
                    found[row["model"]] = {c: float(row[c]) for c in _CLASSES[dataset]}
        return found


def _read_csv(path: Path, columns: tuple[str, ...], text: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: the paper's numbers are missing; it is committed under results/paper/")
    try:
        frame = pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV ({err})") from None
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DataError(f"{path}: missing column '{absent[0]}' (expected {', '.join(columns)})")
    frame = frame[list(columns)]
    for column in columns:
        if column in text:
            frame[column] = frame[column].fillna("")
        elif not pd.api.types.is_numeric_dtype(frame[column]):
            raise DataError(f"{path}: column '{column}' holds non-numeric values")
        else:
            frame[column] = frame[column].astype(float)
    return frame


def load_paper(folder: str | Path) -> PaperNumbers:
    """Read `results/paper/` (table3-7.csv, figure7.csv, flags.csv); a missing file or column is a DataError."""
    folder = Path(folder)
    tables = {name: _read_csv(folder / f"{name}.csv", columns, ("sweep",) if name == "figure7" else _NAMES)
              for name, columns in COLUMNS.items()}
    manual = _read_csv(folder / "flags.csv", FLAG_COLUMNS, FLAG_COLUMNS)
    flags = [Flag(row["id"], row["where"], f"the text says '{row['statement']}'", row["tables_say"],
                  tuple(row["tables"].split()))
             for _, row in manual.iterrows()]
    return PaperNumbers(**tables, flags=flags)


def _key(row: pd.Series) -> str:
    """Rows of two tables are the same method when they map to the same model, or else have the same name."""
    return row["model"] or re.sub(r"[^a-z0-9]", "", row["method"].lower())


def _title(name: str) -> str:
    return f"Figure {name[6:]}" if name.startswith("figure") else f"Table {name[5:]}"


def _row_mean_flags(paper: PaperNumbers) -> list[Flag]:
    """Rows whose stated mIoU is not the mean of their class IoUs (Table 3 repeats these mIoUs: it is concerned too)."""
    flags = []
    in_table3 = {_key(row) for _, row in paper.table3.iterrows()}
    for name, dataset in CLASS_TABLES.items():
        classes = list(_CLASSES[dataset])
        for _, row in paper.table(name).iterrows():
            mean = float(row[classes].mean())
            if abs(mean - row["miou"]) > ROUNDING:
                flags.append(Flag(f"row-mean/{name}/{_key(row)}", f"{_title(name)}, {row['method']}",
                                  "the stated mIoU is not the mean of the class IoUs",
                                  f"classes average {mean:.2f}, stated {row['miou']:.2f}",
                                  (name, "table3") if _key(row) in in_table3 else (name,)))
    return flags


def _cross_table_flags(paper: PaperNumbers) -> list[Flag]:
    differences: dict[tuple[str, str, str], list[str]] = {}
    methods: dict[tuple[str, str, str], str] = {}
    for first, first_column, second, second_column in CROSS_CHECKS:
        others = {_key(row): row for _, row in paper.table(second).iterrows()}
        for _, row in paper.table(first).iterrows():
            other = others.get(_key(row))
            if other is None or np.isnan(row[first_column]) or np.isnan(other[second_column]):
                continue
            if abs(row[first_column] - other[second_column]) > SAME:
                key = (first, second, _key(row))
                methods[key] = row["method"]
                differences.setdefault(key, []).append(
                    f"{first_column} {row[first_column]:.2f} vs {second_column} {other[second_column]:.2f}")
    return [Flag(f"cross/{first}-{second}/{key}", f"{_title(first)} vs {_title(second)}, {methods[first, second, key]}",
                 f"the same method has different numbers in {_title(first)} and {_title(second)}",
                 "; ".join(found), (first, second))
            for (first, second, key), found in differences.items()]


def _table6_source(table6: pd.DataFrame, miou: float) -> str:
    """Which Table 6 rows print this mIoU (a hint where a Figure 7 value was taken from)."""
    same = table6.loc[(table6["miou"] - miou).abs() <= SAME, "method"].tolist()
    return f" (= Table 6 {', '.join(same)})" if same else ""


def _figure7_flags(paper: PaperNumbers) -> list[Flag]:
    """Two stated optima at one (lambda1, lambda2) setting must be the same run, hence the same mIoU."""
    flags = []
    table6 = paper.table("table6")
    for (lambda1, lambda2), points in paper.table("figure7").groupby(["lambda1", "lambda2"]):
        for (_, a), (_, b) in combinations(points.iterrows(), 2):
            if abs(a["miou"] - b["miou"]) <= SAME:
                continue
            flags.append(Flag(
                f"figure7/{lambda1:g}-{lambda2:g}", "section 4.3, text on Figure 7",
                f"the {a['sweep']} sweep and the {b['sweep']} sweep both peak at λ1 = {lambda1:g}, λ2 = {lambda2:g}, "
                "one setting, with different mIoU",
                f"{a['sweep']} sweep {a['miou']:.2f}{_table6_source(table6, a['miou'])}, "
                f"{b['sweep']} sweep {b['miou']:.2f}{_table6_source(table6, b['miou'])}", ("figure7", "table6")))
    return flags


def consistency_flags(paper: PaperNumbers) -> list[Flag]:
    """Every inconsistency of the paper: the automatic checks (row means, cross-table, Figure 7), then flags.csv."""
    return [*_row_mean_flags(paper), *_cross_table_flags(paper), *_figure7_flags(paper), *paper.flags]
