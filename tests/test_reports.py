"""Reports: every printed number is checked against the records it came from.

The records are fabricated (plausible confusion matrices for several models, datasets and seeds,
summarised by `bemseg.metrics.summarize`), written and read back through `write_runs`/`load_runs`;
one test collects real run folders made by the engine.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from baselines.resnet_segmentor import MMSEG_SGD_RECIPE
from bemseg.data.catalog import DATASETS
from bemseg.errors import DataError
from bemseg.metrics import summarize
from bemseg.models.clip_segmentor import CLIP_RECIPE
from bemseg.reports.benchmark import compare_variant, freeze_benchmark, load_frozen, protocol_hash
from bemseg.reports.figures import plot_class_iou, plot_lambda_study, plot_learning_curves, plot_predictions
from bemseg.reports.label import SYNTHETIC_LABEL, report_label
from bemseg.reports.paper import load_paper
from bemseg.reports.render import to_latex, to_markdown, write_table
from bemseg.reports.runs import collect_runs, load_complexity, load_runs, seed_units, select, write_runs
from bemseg.reports.significance import TEST_NAME, compare
from bemseg.reports.stats import mean_std
from bemseg.reports.tables import TABLES, ReportTable

PAPER = Path(__file__).resolve().parent.parent / "results" / "paper"
RANDOM = "random initialisation (no pretrained weights)"
COMPARISON = ("pspnet", "clip_fpn", "denseclip", "bemseg", "segclip")
ABLATION = ("bemseg_b", "bemseg_c")
SEEDS = (0, 1, 2)
QUALITY = {"pspnet": 3.0, "clip_fpn": 3.2, "denseclip": 3.5, "bemseg_b": 3.8, "bemseg_c": 3.7, "bemseg": 4.0,
           "segclip": 3.6}
LAMBDA_STUDY = {"model": "bemseg", "dataset": "potsdam", "lambda1_fixed": 0.4, "lambda2_fixed": 0.2,
                "lambda1_values": [0.2, 0.4, 0.6], "lambda2_values": [0.1, 0.2, 0.3, 0.5]}
CELL = re.compile(r"(?P<mean>-?\d+\.\d+)(?: ± (?P<std>\d+\.\d+))? \((?P<n>\d+)\)")


def fake_record(root: Path, dataset: str, model: str, seed: int, study: str = "main", lambda1: float | None = None,
                lambda2: float | None = None, absent: str | None = None, synthetic: bool = True,
                weights: str = RANDOM) -> dict:
    """A run record as `collect_runs` makes it, from a random diagonal-heavy confusion matrix."""
    classes = list(DATASETS[dataset].class_names)
    rng = np.random.default_rng(zlib.crc32(f"{dataset}/{model}/{seed}/{lambda1}/{lambda2}".encode()))
    units = rng.integers(0, 8, (8, len(classes), len(classes)))  # eight test units, summed into the matrix
    diagonal = np.arange(len(classes))
    units[:, diagonal, diagonal] = rng.integers(12, 25, (8, len(classes))) * QUALITY[model]
    if absent:
        units[:, classes.index(absent), :] = units[:, :, classes.index(absent)] = 0
    cm = units.sum(0)
    scores = summarize(cm)
    run = model if study == "main" else f"lambda/{model}_l1-{lambda1}_l2-{lambda2}"
    folder = root / "runs" / dataset / run / f"seed{seed}"
    provenance = {"seed": seed, "config_hash": f"hash{seed}", "git_commit": "abc123", "device": "cpu: test",
                  "versions": {"torch": "2.x"}, "created": "2024-01-01T00:00:00+00:00", "synthetic": synthetic,
                  "weights": weights}
    return {"dataset": dataset, "model": model, "run": run, "study": study, "seed": seed, "lambda1": lambda1,
            "lambda2": lambda2, "class_names": classes, "iou": scores["iou"], "f1": scores["f1"],
            "miou": scores["miou"], "mf1": scores["mf1"], "oa": scores["oa"],
            "absent_class_names": [classes[i] for i in scores["absent_classes"]], "confusion_matrix": cm.tolist(),
            "unit_confusion_matrices": units.tolist(),
            "loss_curve": {"iteration": [50, 100], "total": [2.0 / QUALITY[model], 1.0 / QUALITY[model] + 0.01 * seed]},
            "ms": False, "iterations": 100, "batch_size": 4, "crop_size": 512,
            "recipe": (MMSEG_SGD_RECIPE if model == "pspnet" else CLIP_RECIPE).as_dict(), "precision": "fp32",
            "seconds_per_iter": 0.1 * QUALITY[model] + 0.01 * seed,
            "projected_hours": (0.1 * QUALITY[model] + 0.01 * seed) * 100 / 3600, "peak_memory_mb": 1000.0,
            "eval_fps": None, "synthetic": synthetic, "weights": weights,
            "predictions_dir": str(folder / "eval" / "predictions"), "provenance": provenance}


def fake_records(root: Path, **options) -> list[dict]:
    records = []
    for dataset in DATASETS:
        models = COMPARISON + (ABLATION if dataset != "loveda" else ())
        for model in models:
            for seed in SEEDS:
                absent = "clutter" if (dataset, model, seed) == ("potsdam", "pspnet", 1) else None
                records.append(fake_record(root, dataset, model, seed, absent=absent, **options))
    for seed in (0, 1):
        for lambda1, lambda2 in ((0.4, 0.1), (0.4, 0.3), (0.4, 0.5), (0.2, 0.2), (0.6, 0.2)):
            records.append(fake_record(root, "potsdam", "bemseg", seed, "lambda", lambda1, lambda2, **options))
    return records


def fake_complexity() -> dict[str, dict]:
    return {model: {"model": model, "num_classes": 6, "size": 512, "params_m": 30.0 + i, "text_params_m": 63.7,
                    "gflops": 60.0 + 2 * i, "flop_convention": "fvcore", "unsupported_ops": {},
                    "weights": RANDOM, "fps": 4.0 - 0.2 * i, "seconds_per_forward": 1 / (4.0 - 0.2 * i),
                    "fps_repeats": 3, "fps_device": "cpu: test", "provenance": {"git_commit": "abc123"}}
            for i, model in enumerate(QUALITY)}


@pytest.fixture(scope="module")
def paper():
    return load_paper(PAPER)


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    return fake_records(tmp_path_factory.mktemp("records"))


@pytest.fixture(scope="module")
def runs(records, tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("collected")
    write_runs(records, folder / "runs.json", folder / "runs.csv")
    return load_runs(folder / "runs.json")


def expected(records: list[dict], dataset: str, model: str, metric: str, study: str = "main") -> dict[int, float]:
    """Per-seed percent values recomputed straight from the records."""
    found = {}
    for r in records:
        if (r["dataset"], r["model"], r["study"]) == (dataset, model, study):
            value = r[metric] if metric in ("miou", "mf1", "oa") else r["iou"][r["class_names"].index(metric)]
            found[r["seed"]] = 100 * value
    return found


def parse(cell: str) -> tuple[float, float, int]:
    match = CELL.fullmatch(cell)
    assert match, f"not a seed cell: {cell!r}"
    return float(match["mean"]), float(match["std"]) if match["std"] else math.nan, int(match["n"])


def check_seed_cell(cell: str, values: dict[int, float]) -> None:
    kept = [v for v in values.values() if not math.isnan(v)]
    mean, std, n = parse(cell)
    assert n == len(kept)
    assert mean == pytest.approx(np.mean(kept), abs=0.005)
    assert std == pytest.approx(np.std(kept, ddof=1), abs=0.005)


def check_delta(cell: str, values: dict[int, float], paper_value: float) -> None:
    if math.isnan(paper_value):
        assert cell == ""
    else:
        assert float(cell) == pytest.approx(np.nanmean(list(values.values())) - paper_value, abs=0.0051)


def read_table(prefix: Path) -> pd.DataFrame:
    return pd.read_csv(f"{prefix}.csv", comment="#", dtype=str, keep_default_na=False).set_index("model")


def rendered(table: ReportTable, tmp_path: Path) -> pd.DataFrame:
    write_table(table, tmp_path / table.name)
    return read_table(tmp_path / table.name)


# -- statistics -------------------------------------------------------------------------------------------------

def test_mean_std_ignores_nan_and_uses_the_sample_std():
    mean, std, n = mean_std([1.0, float("nan"), 2.0, None, 4.0])
    assert (mean, n) == (pytest.approx(7 / 3), 3)
    assert std == pytest.approx(np.std([1, 2, 4], ddof=1))
    single = mean_std([5.0, float("nan")])
    assert single[0] == 5.0 and math.isnan(single[1]) and single[2] == 1
    assert mean_std([])[2] == 0 and math.isnan(mean_std([])[0])


# -- labels -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("synthetic", "weights", "want"), [
    (True, RANDOM, SYNTHETIC_LABEL),
    (True, "CLIP weights from RN50.pt", "synthetic data: not comparable to the paper"),
    (False, RANDOM, "random encoders: not comparable to the paper"),
    (False, "CLIP weights from RN50.pt", None),
])
def test_report_label(synthetic, weights, want):
    frame = pd.DataFrame({"synthetic": [False, synthetic], "weights": ["CLIP weights from RN50.pt", weights]})
    assert report_label(frame) == want


# -- tables -----------------------------------------------------------------------------------------------------

def test_table3_numbers_are_the_records_and_the_papers(runs, records, paper, tmp_path):
    complexity = fake_complexity()
    table = TABLES["table3"](runs, complexity, paper, report_label(runs))
    frame = rendered(table, tmp_path)
    assert list(frame.index) == ["pspnet", "clip_fpn", "denseclip", "bemseg", "segclip"]  # paper order, then ours
    for model in frame.index:
        row = frame.loc[model]
        for dataset, title in (("potsdam", "Potsdam"), ("vaihingen", "Vaihingen"), ("loveda", "LoveDA")):
            for metric, name in (("miou", "mIoU"), ("oa", "OA")):
                values = expected(records, dataset, model, metric)
                paper_value = paper.value("table3", model, f"{dataset}_{metric}")
                check_seed_cell(row[f"{title} {name} ours"], values)
                assert row[f"{title} {name} paper"] == ("" if math.isnan(paper_value) else f"{paper_value:.2f}")
                check_delta(row[f"{title} {name} Δ"], values, paper_value)
        seconds = statistics.median(r["seconds_per_iter"] for r in records
                                    if (r["dataset"], r["model"], r["study"]) == ("potsdam", model, "main"))
        base = statistics.median(r["seconds_per_iter"] for r in records
                                 if (r["dataset"], r["model"], r["study"]) == ("potsdam", "clip_fpn", "main"))
        assert float(row["Train s/iter ours"]) == pytest.approx(seconds, rel=5e-3)
        assert float(row["Train ratio ours"]) == pytest.approx(seconds / base, abs=0.005)
        assert float(row["Train h @80k ours"]) == pytest.approx(seconds * 80000 / 3600, rel=5e-3)
        assert float(row["GFLOPs ours"]) == complexity[model]["gflops"]
        assert float(row["FPS ratio ours"]) == pytest.approx(complexity[model]["fps"] / complexity["clip_fpn"]["fps"],
                                                             abs=0.005)
    assert frame.loc["bemseg", "Train h paper"] == "15.5" and frame.loc["bemseg", "Train ratio paper"] == "1.52"
    assert frame.loc["bemseg", "FPS ratio paper"] == "0.84" and frame.loc["bemseg", "GFLOPs paper"] == "70.30"
    assert frame.loc["segclip", "Potsdam mIoU paper"] == "" and frame.loc["segclip", "Potsdam mIoU Δ"] == ""
    notes = " ".join(table.notes)
    assert "one multiply-add = one flop" in notes and "only meaningful as ratios" in notes and "cpu: test" in notes
    assert "HAFNet" in notes and "2.00%" in notes  # the paper's Table 3 inconsistencies
    recipes = [note for note in table.notes if note.startswith("training recipe")]
    assert recipes == [f"training recipe `mmseg_sgd` ({MMSEG_SGD_RECIPE.describe()}; precision fp32): pspnet.",
                       f"training recipe `denseclip_adamw` ({CLIP_RECIPE.describe()}; precision fp32): clip_fpn, "
                       "denseclip, bemseg, segclip."]


@pytest.mark.parametrize(("name", "dataset"), [("table4", "potsdam"), ("table5", "loveda")])
def test_class_tables_match_the_records(runs, records, paper, tmp_path, name, dataset):
    table = TABLES[name](runs, {}, paper, None)
    frame = rendered(table, tmp_path)
    assert list(frame.index) == ["pspnet", "clip_fpn", "denseclip", "bemseg", "segclip"]
    for model in frame.index:
        for metric in (*DATASETS[dataset].class_names, "miou"):
            header = "mIoU" if metric == "miou" else metric
            values = expected(records, dataset, model, metric)
            check_seed_cell(frame.loc[model, f"{header} ours"], values)
            check_delta(frame.loc[model, f"{header} Δ"], values, paper.value(name, model, metric))


def test_an_absent_class_is_left_out_and_noted(runs, paper, tmp_path):
    table = TABLES["table4"](runs, {}, paper, None)
    frame = rendered(table, tmp_path)
    assert parse(frame.loc["pspnet", "clutter ours"])[2] == 2  # seed 1 has no clutter pixel
    assert parse(frame.loc["pspnet", "tree ours"])[2] == 3
    assert "Potsdam, pspnet: class 'clutter' absent (no label or predicted pixel) in 1 of 3 runs" in \
        " ".join(table.notes)
    assert "77.01" in " ".join(table.notes)  # DenseCLIP's inconsistent Table 4 row


def test_ablation_table_has_the_paired_gain_over_the_baseline(runs, records, paper, tmp_path):
    table = TABLES["table6"](runs, fake_complexity(), paper, None)
    frame = rendered(table, tmp_path)
    assert list(frame.index) == ["clip_fpn", "bemseg_b", "bemseg_c", "bemseg"]
    assert frame.loc["clip_fpn", "Method"] == "CLIP-FPN"
    base = expected(records, "potsdam", "clip_fpn", "miou")
    for model in ("bemseg_b", "bemseg_c", "bemseg"):
        for metric in ("miou", "mf1", "oa", "car"):
            header = {"miou": "mIoU", "mf1": "mF1", "oa": "OA"}.get(metric, metric)
            check_seed_cell(frame.loc[model, f"{header} ours"], expected(records, "potsdam", model, metric))
        ours = expected(records, "potsdam", model, "miou")
        gain = compare(seed_units(select(runs, "potsdam", "clip_fpn")), seed_units(select(runs, "potsdam", model)))
        assert gain.delta == pytest.approx(np.mean([ours[s] - base[s] for s in SEEDS]))
        assert frame.loc[model, "Δ mIoU vs baseline ours [95% CI]"] == \
            f"{gain.delta:+.2f} [{gain.low:+.2f}, {gain.high:+.2f}]"
        assert frame.loc[model, "p"] == ("<0.001" if gain.p < 0.001 else f"{gain.p:.3f}")
    assert frame.loc["bemseg_b", "Δ mIoU vs baseline paper"] == "+2.94"  # 78.84 - 75.90
    assert frame.loc["clip_fpn", "Δ mIoU vs baseline ours [95% CI]"] == ""
    assert TEST_NAME in " ".join(table.notes)
    assert frame.loc["bemseg_c", "Train ratio paper"] == "1.42" and frame.loc["bemseg", "FPS paper"] == "34.0"
    assert "1.40" in " ".join(table.notes)  # the building-gain flag
    table7 = rendered(TABLES["table7"](runs, {}, paper, None), tmp_path)
    assert "Train s/iter ours" not in table7.columns
    assert list(table7.index) == ["clip_fpn", "bemseg_b", "bemseg_c", "bemseg"]
    check_seed_cell(table7.loc["bemseg", "clutter ours"], expected(records, "vaihingen", "bemseg", "clutter"))


def test_tables_only_hold_what_the_runs_have(runs, paper):
    potsdam_only = runs[(runs["dataset"] == "potsdam") & runs["model"].isin(["clip_fpn", "bemseg"])]
    table = TABLES["table3"](potsdam_only, {}, paper, None)
    assert [row[1] for row in table.rows] == ["clip_fpn", "bemseg"]
    assert not any("Vaihingen" in c or "LoveDA" in c for c in table.columns)
    gflops = [table.columns.index("GFLOPs ours"), table.columns.index("GFLOPs paper")]
    assert [[row[i] for i in gflops] for row in table.rows] == [["", "62.60"], ["", "70.30"]]
    empty = TABLES["table5"](potsdam_only, {}, paper, None)
    assert empty.rows == [] and empty.notes[0] == "no runs on LoveDA in these results."


def test_the_label_heads_every_format_only_when_needed(tmp_path, paper):
    synthetic = load_runs_from(tmp_path / "synthetic", fake_records(tmp_path / "synthetic"))
    real = load_runs_from(tmp_path / "real", fake_records(tmp_path / "real", synthetic=False,
                                                          weights="CLIP weights from RN50.pt"))
    for name, frame in (("synthetic", synthetic), ("real", real)):
        label = report_label(frame)
        write_table(TABLES["table4"](frame, {}, paper, label), tmp_path / name)
    md, tex, csv = (tmp_path / f"synthetic.{s}" for s in ("md", "tex", "csv"))
    assert md.read_text().splitlines()[0] == f"**{SYNTHETIC_LABEL}**"
    assert tex.read_text().splitlines()[0] == f"% {SYNTHETIC_LABEL}"
    assert r"\caption{" in tex.read_text() and r"\textbf{synthetic data, random encoders" in tex.read_text()
    assert csv.read_text().splitlines()[0] == f"# {SYNTHETIC_LABEL}"
    for suffix in ("md", "tex", "csv"):
        assert "not comparable" not in (tmp_path / f"real.{suffix}").read_text()
    assert (tmp_path / "real.md").read_text().startswith("**Table 4.")


def load_runs_from(folder: Path, records: list[dict]) -> pd.DataFrame:
    write_runs(records, folder / "runs.json", folder / "runs.csv")
    return load_runs(folder / "runs.json")


def test_renderers_agree_and_escape():
    table = ReportTable("t", "T_1: 50% of a|b", ["Method", "x ours"], [["a_b & c", "1.00 ± 0.10 (3)"]],
                        ["λ1 note"], None)
    md = to_markdown(table)
    assert "| a_b & c | 1.00 ± 0.10 (3) |" in md and "| :-- | --: |" in md and "- λ1 note" in md
    tex = to_latex(table)
    assert r"a\_b \& c & 1.00 $\pm$ 0.10 (3) \\" in tex and r"T\_1: 50\% of a$|$b" in tex
    assert r"$\lambda$1 note\par" in tex and r"\begin{tabular}{lr}" in tex
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        ReportTable("t", "T", ["a", "b"], [["only one"]])


def test_runs_csv_is_flat_with_per_class_columns(records, tmp_path):
    write_runs(records, tmp_path / "runs.json", tmp_path / "runs.csv")
    flat = pd.read_csv(tmp_path / "runs.csv")
    assert len(flat) == len(records)
    assert {"iou_clutter", "iou_agriculture", "git_commit", "torch", "config_hash", "recipe", "precision"} <= \
        set(flat.columns)
    assert set(flat["recipe"]) == {"mmseg_sgd", "denseclip_adamw"} and set(flat["precision"]) == {"fp32"}
    assert "confusion_matrix" not in flat.columns
    first = records[0]
    assert flat.loc[0, "iou_building"] == pytest.approx(first["iou"][1])
    assert math.isnan(flat.loc[0, "iou_agriculture"])  # Potsdam has no agriculture class
    pspnet = flat[(flat.dataset == "potsdam") & (flat.model == "pspnet") & (flat.seed == 1)].iloc[0]
    assert math.isnan(pspnet["iou_clutter"]) and pspnet["absent_class_names"] == "clutter"
    assert json.loads((tmp_path / "runs.json").read_text())[0]["confusion_matrix"] == first["confusion_matrix"]


# -- figures ----------------------------------------------------------------------------------------------------

def write_predictions(runs: pd.DataFrame, models: list[str], names: list[str]) -> None:
    rng = np.random.default_rng(0)
    for model in models:
        rows = runs[(runs.dataset == "potsdam") & (runs.model == model) & (runs.study == "main")]
        folder = Path(rows.loc[rows.seed.idxmin(), "predictions_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            for kind in ("image", "label", "pred"):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{name}_{kind}.png")


def check_written(png: Path, pdf: Path) -> None:
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    width, height = Image.open(png).size
    assert 600 <= width <= 4000 and 300 <= height <= 4000
    assert not [p for p in png.parent.iterdir() if p.name.endswith(".tmp")]


def test_predictions_figure_marks_missing_cells(tmp_path):
    frame = load_runs_from(tmp_path, fake_records(tmp_path))
    with pytest.raises(DataError, match="no prediction images for potsdam"):
        plot_predictions(frame, "potsdam", ["clip_fpn"], tmp_path / "f.png", tmp_path / "f.pdf", None)
    write_predictions(frame, ["clip_fpn", "bemseg"], ["2_13", "2_14", "3_13", "3_14"])
    png, pdf = tmp_path / "fig5.png", tmp_path / "fig5.pdf"
    figure = plot_predictions(frame, "potsdam", ["clip_fpn", "denseclip", "bemseg"], png, pdf, SYNTHETIC_LABEL,
                              samples=3)
    check_written(png, pdf)
    axes = figure.axes
    assert len(axes) == 3 * 5
    assert [a.get_ylabel() for a in axes[::5]] == ["2_13", "2_14", "3_13"]
    assert [a.get_title() for a in axes[:5]] == ["image", "label", "clip_fpn", "denseclip", "bemseg"]
    assert all([t.get_text() for t in axes[r * 5 + 3].texts] == ["missing"] for r in range(3))  # denseclip has none
    assert all(a.images for i, a in enumerate(axes) if i % 5 != 3)
    assert figure.get_suptitle() == SYNTHETIC_LABEL


def test_class_iou_figure_has_bars_error_bars_and_paper_markers(runs, records, paper, tmp_path):
    png, pdf = tmp_path / "fig6.png", tmp_path / "fig6.pdf"
    models = ["clip_fpn", "bemseg_b", "bemseg_c", "bemseg", "segclip"]
    figure = plot_class_iou(runs, "vaihingen", models, paper, png, pdf, None)
    check_written(png, pdf)
    axes = figure.axes[0]
    heights = {(m, round(b.get_x() + b.get_width() / 2)): b.get_height() for m, c in zip(models, axes.containers)
               for b in c}
    for (model, index), height in heights.items():
        name = DATASETS["vaihingen"].class_names[index]
        assert height == pytest.approx(np.mean(list(expected(records, "vaihingen", model, name).values())))
    [markers] = [c for c in axes.collections if c.get_label() == "paper"]
    centres = {key: x for key, x in zip(heights, (b.get_x() + b.get_width() / 2 for c in axes.containers[:5]
                                                  for b in c))}
    want = {(round(centres[m, i], 6), paper.value("table7", m, c)) for m in models[:4]
            for i, c in enumerate(DATASETS["vaihingen"].class_names)}
    assert {(round(x, 6), y) for x, y in markers.get_offsets().tolist()} == want  # segclip: no paper value
    assert axes.get_xticklabels()[0].get_text() == "impervious surface"
    assert "paper" in [t.get_text() for t in axes.get_legend().get_texts()]


def lambda_means(records: list[dict], swept: str) -> dict[float, float]:
    """Mean mIoU (%) per swept value: lambda runs at the other λ's fixed value, plus the main runs at the default."""
    fixed, value, default = ("lambda1", 0.4, 0.2) if swept == "lambda2" else ("lambda2", 0.2, 0.4)
    points: dict[float, list[float]] = {}
    for r in records:
        if (r["dataset"], r["model"]) != ("potsdam", "bemseg"):
            continue
        if r["study"] == "main":
            points.setdefault(default, []).append(100 * r["miou"])
        elif r[fixed] == value:
            points.setdefault(r[swept], []).append(100 * r["miou"])
    return {x: float(np.mean(v)) for x, v in points.items()}


def test_lambda_figure_plots_the_study_and_stars_the_papers_optimum(runs, records, paper, tmp_path):
    png, pdf = tmp_path / "fig7.png", tmp_path / "fig7.pdf"
    figure = plot_lambda_study(runs, LAMBDA_STUDY, paper, png, pdf, SYNTHETIC_LABEL)
    check_written(png, pdf)
    ours, theirs = figure.axes[:2], figure.axes[2:]  # the paper's optimum on a second y axis of each panel
    for axes, twin, swept, star in zip(ours, theirs, ("lambda2", "lambda1"), ((0.2, 79.33), (0.4, 78.84))):
        assert twin.get_shared_x_axes().joined(axes, twin) and axes.get_ylabel() == "our mIoU (%)"
        assert not [c for c in axes.collections if "paper" in c.get_label()]
        stars = [c for c in twin.collections if c.get_label() == "paper's optimum (right axis)"]
        assert len(stars) == 1 and stars[0].get_offsets()[0].tolist() == pytest.approx(list(star))
        assert f"paper: {star[1]:.2f}" in [t.get_text() for t in twin.texts]
        line = axes.get_lines()[0]
        plotted = dict(zip(line.get_xdata().tolist(), line.get_ydata().tolist()))
        assert plotted == pytest.approx(lambda_means(records, swept))
        assert len(plotted) == (4 if swept == "lambda2" else 3)
    assert any("79.33" in t.get_text() and "78.84" in t.get_text() for t in figure.texts)  # the paper's conflict


def test_learning_curves_plot_the_mean_loss_of_every_model_per_dataset(runs, records, tmp_path):
    png, pdf = tmp_path / "curves.png", tmp_path / "curves.pdf"
    models = ["pspnet", "clip_fpn", "bemseg"]
    figure = plot_learning_curves(runs, models, png, pdf, SYNTHETIC_LABEL)
    check_written(png, pdf)
    assert [a.get_title() for a in figure.axes] == ["Potsdam", "Vaihingen", "LoveDA"]
    for axes, dataset in zip(figure.axes, DATASETS):
        lines = {line.get_label(): line for line in axes.get_lines()}
        assert set(lines) == {f"{m} ({len(SEEDS)})" for m in models}
        for model in models:
            curves = [r["loss_curve"] for r in records
                      if (r["dataset"], r["model"], r["study"]) == (dataset, model, "main")]
            line = lines[f"{model} ({len(SEEDS)})"]
            assert line.get_xdata().tolist() == curves[0]["iteration"]
            assert line.get_ydata().tolist() == pytest.approx(np.mean([c["total"] for c in curves], axis=0))


# -- frozen benchmark -------------------------------------------------------------------------------------------

PROTOCOL = {"iterations": 100, "batch_size": 4, "crop_size": 512, "eval": {"ms": False}}


def test_freeze_then_compare_round_trip(runs, records, tmp_path):
    references = runs[runs.model != "segclip"]
    complexity = fake_complexity()
    frozen_path = tmp_path / "frozen" / "benchmark.json"
    written = freeze_benchmark(references, complexity, PROTOCOL, frozen_path)
    frozen = load_frozen(frozen_path)
    assert frozen == json.loads(json.dumps(written).replace("NaN", "null"))
    assert frozen["protocol"]["hash"] == protocol_hash(PROTOCOL) and frozen["label"] == SYNTHETIC_LABEL
    assert len(frozen["runs"]) == sum(1 for r in records if r["model"] != "segclip" and r["study"] == "main")
    out = tmp_path / "compare" / "segclip.md"
    summary = compare_variant("segclip", runs, frozen, dict(PROTOCOL), out, complexity)
    for dataset in DATASETS:
        found = summary["datasets"][dataset]
        mine = mean_std(expected(records, dataset, "segclip", "miou").values())
        assert found["variant"]["miou"] == pytest.approx(list(mine))
        for model, ref in found["references"].items():
            theirs = mean_std(expected(records, dataset, model, "miou").values())
            assert ref["miou"] == pytest.approx(list(theirs))
            assert ref["delta_miou"] == pytest.approx(mine[0] - theirs[0])  # every seed is shared
            difference = compare(seed_units(select(references, dataset, model)),
                                 seed_units(select(runs, dataset, "segclip")))
            assert (ref["ci"], ref["p"], ref["significant"]) == \
                ([pytest.approx(difference.low), pytest.approx(difference.high)], pytest.approx(difference.p),
                 difference.significant)
            assert ref["verdict"] == ("no detectable difference" if not difference.significant else
                                      f"{'better' if difference.delta > 0 else 'worse'} than the reference")
        best = max(found["references"], key=lambda m: found["references"][m]["miou"][0])
        assert found["best_reference"] == best
    text = out.read_text()
    assert text.splitlines()[2] == f"**{SYNTHETIC_LABEL}**"
    assert TEST_NAME in text and "no detectable difference' means the data cannot tell" in text
    best = summary["datasets"]["potsdam"]["best_reference"]
    assert f"IoU (%) per class, segclip against the best reference ({best})" in text
    assert "| segclip | variant | 36.00 | 72.00 | 2.80 | cpu: test |" in text  # beside the references' cost
    assert "git commit abc123" in text and "protocol " + frozen["protocol"]["hash"] in text


def test_a_different_protocol_is_refused(runs, tmp_path):
    frozen = freeze_benchmark(runs[runs.model != "segclip"], {}, PROTOCOL, tmp_path / "benchmark.json")
    other = {**PROTOCOL, "iterations": 50}
    with pytest.raises(DataError) as err:
        compare_variant("segclip", runs, frozen, other, tmp_path / "segclip.md")
    message = str(err.value)
    assert protocol_hash(other) in message and frozen["protocol"]["hash"] in message
    assert "freeze_benchmark" in message and "\n" not in message
    assert not (tmp_path / "segclip.md").exists()


def test_frozen_file_errors_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"missing\.json: missing; make the frozen benchmark with "
                                        r"`snakemake --cores all freeze_benchmark`"):
        load_frozen(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match=r"broken\.json: malformed JSON .*freeze_benchmark`$"):
        load_frozen(broken)
    broken.write_text(json.dumps({"protocol": {"hash": "x"}, "label": None, "created": "now", "complexity": {}}))
    with pytest.raises(DataError, match=r"broken\.json: missing field 'runs'"):
        load_frozen(broken)


# -- collecting real run folders --------------------------------------------------------------------------------

def test_collect_runs_reads_engine_run_folders(tmp_path):
    from bemseg.engine.evaluate import evaluate
    from bemseg.engine.train import train
    from tests.engine_helpers import prepared_potsdam, run_config

    prepared = prepared_potsdam(tmp_path / "data")
    run_dir = tmp_path / "results" / "runs" / "potsdam" / "clip_rn50_fpn" / "seed0"
    train(run_config(prepared, model="clip_rn50_fpn", iterations=2), run_dir)
    metrics = evaluate(run_dir / "model.pt", run_dir / "eval")

    [record] = collect_runs([run_dir], {str(run_dir): "main"})
    assert (record["dataset"], record["model"], record["run"], record["study"], record["seed"]) == \
        ("potsdam", "clip_rn50_fpn", "clip_rn50_fpn", "main", 0)
    assert record["miou"] == metrics["miou"] and record["confusion_matrix"] == metrics["confusion_matrix"]
    assert record["lambda1"] is None and record["iterations"] == 2 and record["crop_size"] == 32
    assert record["synthetic"] is True and record["weights"].startswith("random initialisation")
    assert "trained_with" not in record["provenance"] and record["provenance"]["git_commit"]
    assert any(Path(record["predictions_dir"]).glob("*_pred.png"))
    frame = load_runs_from(tmp_path / "collected", [record])
    assert report_label(frame) == SYNTHETIC_LABEL and frame.loc[0, "iou"] == pytest.approx(metrics["iou"])
    [renamed] = collect_runs([run_dir], {str(run_dir): "lambda"}, {str(run_dir): "lambda/x"})
    assert (renamed["run"], renamed["study"]) == ("lambda/x", "lambda")

    summary = json.loads((run_dir / "train_summary.json").read_text())
    del summary["projected_hours"]
    (run_dir / "train_summary.json").write_text(json.dumps(summary))
    with pytest.raises(DataError, match=r"train_summary.json: missing field 'projected_hours'"):
        collect_runs([run_dir], {str(run_dir): "main"})
    (run_dir / "eval" / "metrics.json").unlink()
    with pytest.raises(DataError, match=r"eval/metrics.json: missing"):
        collect_runs([run_dir], {str(run_dir): "main"})


def test_complexity_records_are_keyed_by_model(tmp_path):
    paths = []
    for model, record in list(fake_complexity().items())[:2]:
        paths.append(tmp_path / f"{model}.json")
        paths[-1].write_text(json.dumps(record))
    assert set(load_complexity(paths)) == {"pspnet", "clip_fpn"}
    with pytest.raises(DataError, match="a second complexity record for 'pspnet'"):
        load_complexity([paths[0], paths[0]])
    (tmp_path / "bad.json").write_text(json.dumps({"model": "x"}))
    with pytest.raises(DataError, match=r"bad\.json: missing field 'params_m'"):
        load_complexity([tmp_path / "bad.json"])
