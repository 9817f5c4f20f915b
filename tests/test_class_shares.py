"""Figure 4's class shares: counted over train + test from manifests, plotted to PNG and PDF."""

from __future__ import annotations

import pytest
from PIL import Image

from bemseg.reports.class_shares import class_share_table, plot_class_shares


def _manifest(train: list[int], test: list[int], ignore: int = 1000) -> dict:
    names = ["impervious_surface", "building", "low_vegetation", "tree", "car", "clutter"]
    return {"class_names": names,
            "pixels": {"train": {**dict(zip(names, train)), "ignore": ignore},
                       "test": {**dict(zip(names, test)), "ignore": ignore}}}


MANIFESTS = {"potsdam": _manifest([30, 20, 20, 10, 5, 15], [10, 20, 0, 10, 5, 5]),
             "vaihingen": _manifest([100, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0])}


def test_shares_are_over_labelled_pixels_of_train_and_test():
    table = class_share_table(MANIFESTS)
    assert list(table.columns) == ["dataset", "class", "pixels", "share"]
    potsdam = table[table.dataset == "potsdam"].set_index("class")
    assert potsdam.loc["impervious_surface", "pixels"] == 40
    assert potsdam.loc["impervious_surface", "share"] == pytest.approx(40 / 150)
    assert potsdam.loc["car", "share"] == pytest.approx(10 / 150)
    assert potsdam["share"].sum() == pytest.approx(1.0)
    assert table[table.dataset == "vaihingen"].share.tolist() == [1.0, 0, 0, 0, 0, 0]


def test_plot_writes_png_and_pdf_with_the_banner(tmp_path):
    png, pdf = tmp_path / "fig4.png", tmp_path / "fig4.pdf"
    table = plot_class_shares(MANIFESTS, png, pdf, label="synthetic data, random encoders: not comparable to the paper")
    assert len(table) == 12
    assert Image.open(png).size[0] > 600
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig4.pdf", "fig4.png"]  # no temporary files left
    plain = tmp_path / "plain.png"
    plot_class_shares(MANIFESTS, plain, tmp_path / "plain.pdf")
    assert plain.read_bytes() != png.read_bytes()
