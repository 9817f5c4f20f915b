"""The transcribed paper numbers: shape, sampled values, and every inconsistency the checks must find."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from bemseg.data.catalog import ISPRS_CLASSES, LOVEDA
from bemseg.errors import DataError
from bemseg.reports.paper import consistency_flags, load_paper

PAPER = Path(__file__).resolve().parent.parent / "results" / "paper"


@pytest.fixture(scope="module")
def paper():
    return load_paper(PAPER)


@pytest.fixture(scope="module")
def flags(paper):
    return {flag.id: flag for flag in consistency_flags(paper)}


def test_every_table_has_the_papers_rows_and_columns(paper):
    assert [len(paper.table(n)) for n in ("table3", "table4", "table5", "table6", "table7", "figure7")] == \
        [11, 11, 9, 4, 4, 2]
    assert list(paper.table4.columns[2:8]) == list(ISPRS_CLASSES)
    assert list(paper.table5.columns[2:9]) == list(LOVEDA.class_names)
    assert paper.models("table3") == ["pspnet", "deeplabv3plus", "semantic_fpn", "clip_fpn", "denseclip", "bemseg"]
    assert paper.models("table6") == ["clip_fpn", "bemseg_b", "bemseg_c", "bemseg"]
    unimplemented = paper.table3.loc[paper.table3["model"] == "", "method"].tolist()
    assert unimplemented == ["BANet", "SwinB-CNN", "GLOTS", "HAFNet", "LSeg"]
    assert paper.method("clip_fpn") == "CLIP-FPN" and paper.method("bemseg_c") == "BEMSeg-C"


def test_sampled_values_are_the_papers(paper):
    bemseg = paper.table3.set_index("method").loc["BEMSeg"]
    assert bemseg.drop("model").tolist() == [79.33, 91.25, 76.28, 90.96, 54.71, 70.66, 70.30, 54.12, 15.5, 34.0]
    loveda = paper.table5.set_index("method").loc["BEMSeg"]
    assert loveda.drop("model").tolist() == [56.79, 67.05, 56.77, 70.43, 32.52, 45.77, 53.65, 54.71]
    banet = paper.table3.set_index("method").loc["BANet"]
    assert banet["gflops"] == 58.10 and pd.isna(banet["loveda_miou"]) and pd.isna(banet["fps"])  # '-' -> empty
    assert paper.value("table4", "denseclip", "clutter") == 35.62
    assert paper.table4.set_index("method").loc["SwinB-CNN", "building"] == 92.4
    assert paper.value("table6", "bemseg_b", "mf1") == 86.88 and paper.value("table6", "bemseg_c", "fps") == 40.3
    assert paper.value("table7", "clip_fpn", "oa") == 90.15
    assert paper.class_iou("vaihingen")["bemseg"]["clutter"] == 44.29
    assert paper.figure7.values.tolist() == [["lambda2", 0.4, 0.2, 79.33], ["lambda1", 0.4, 0.2, 78.84]]


def test_the_automatic_checks_find_exactly_the_known_inconsistencies(flags):
    automatic = {i for i in flags if "/" in i}
    assert automatic == {"row-mean/table4/denseclip", "row-mean/table5/semantic_fpn", "cross/table3-table4/hafnet",
                         "cross/table4-table6/bemseg", "figure7/0.4-0.2"}
    assert flags["row-mean/table4/denseclip"].values == "classes average 77.01, stated 77.31"
    assert flags["row-mean/table5/semantic_fpn"].values == "classes average 49.99, stated 50.01"
    assert flags["cross/table3-table4/hafnet"].values == "potsdam_miou 78.76 vs miou 78.06"
    assert flags["cross/table4-table6/bemseg"].values == "car 92.37 vs car 92.87; clutter 43.37 vs clutter 42.87"
    lambda_flag = flags["figure7/0.4-0.2"]
    assert "79.33 (= Table 6 BEMSeg)" in lambda_flag.values and "78.84 (= Table 6 BEMSeg-B)" in lambda_flag.values
    assert set(flags["cross/table4-table6/bemseg"].tables) == {"table4", "table6"}


def test_consistent_rows_are_not_flagged(paper, flags):
    """BEMSeg's Table 4 classes average 79.33 as stated; HAFNet's Table 4 row is consistent in itself."""
    assert not any(i.startswith("row-mean/table4/bemseg") or i.startswith("row-mean/table4/hafnet") for i in flags)
    assert paper.table4.set_index("method").loc["BEMSeg", list(ISPRS_CLASSES)].mean() == pytest.approx(79.33, abs=0.01)


def test_the_manual_flags_are_what_the_tables_say(paper, flags):
    """Each textual flag is recomputed here from the transcribed tables."""
    t3, t6 = paper.table3.set_index("method"), paper.table6.set_index("method")
    assert t6.loc["BEMSeg-B", "building"] - t6.loc["Baseline", "building"] == pytest.approx(1.40)
    assert "1.60%" in flags["building-gain-bemseg-b"].what and "1.40" in flags["building-gain-bemseg-b"].values
    assert t3.loc["HAFNet", "vaihingen_miou"] > t3.loc["BEMSeg", "vaihingen_miou"]
    assert "76.37" in flags["abstract-vaihingen-superior"].values
    gaps = (t3.loc["BEMSeg", "loveda_miou"] - t3["loveda_miou"].drop("BEMSeg")).dropna().round(2)
    assert gaps.max() == 7.28 and not set(gaps.abs()) & {0.37, 7.14}
    assert "7.28" in flags["abstract-loveda-range"].values
    assert 100 * (t3.loc["BEMSeg", "gflops"] / t3.loc["DenseCLIP", "gflops"] - 1) == pytest.approx(1.44, abs=0.005)
    assert "2.00%" in flags["gflops-increase-over-denseclip"].what
    assert paper.table4.set_index("method").loc["HAFNet", "car"] == 91.58
    assert "94.58" in flags["hafnet-car-text"].what
    assert t3.loc["HAFNet", "potsdam_miou"] > t3.loc["LSeg", "potsdam_miou"] > \
        paper.table4.set_index("method").loc["HAFNet", "miou"]
    every_id = [f.id for f in paper.flags]
    assert len(every_id) == len(set(every_id)) == 7


def test_a_new_inconsistency_is_found(tmp_path):
    copy = tmp_path / "paper"
    shutil.copytree(PAPER, copy)
    table7 = (copy / "table7.csv").read_text().replace("44.29,76.28", "44.29,77.28")
    (copy / "table7.csv").write_text(table7)
    found = {f.id: f for f in consistency_flags(load_paper(copy))}
    assert found["row-mean/table7/bemseg"].values == "classes average 76.28, stated 77.28"
    assert found["cross/table3-table7/bemseg"].values == "vaihingen_miou 76.28 vs miou 77.28"


@pytest.mark.parametrize("damage", ["missing_file", "missing_column", "text_in_numbers"])
def test_bad_paper_files_name_the_culprit(tmp_path, damage):
    copy = tmp_path / "paper"
    shutil.copytree(PAPER, copy)
    table5 = copy / "table5.csv"
    if damage == "missing_file":
        table5.unlink()
        expected = "table5.csv: the paper's numbers are missing"
    elif damage == "missing_column":
        table5.write_text(table5.read_text().replace("agriculture", "farmland"))
        expected = "missing column 'agriculture'"
    else:
        table5.write_text(table5.read_text().replace("54.71", "n/a"))
        expected = "column 'miou' holds non-numeric values"
    with pytest.raises(DataError, match=expected):
        load_paper(copy)

