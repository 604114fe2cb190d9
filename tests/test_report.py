"""The report end to end on tiny runs: self-contained HTML, grids showing whose data, curves,
byte-identical re-rendering without retraining, multi-run comparison, and a real browser."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import re
import shutil
import statistics
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mganai.cli import main
from mganai.config import ALL_METHODS, DataConfig
from mganai.data import load_dataset
from mganai.report.grids import to_uint8
from mganai.report.tables import COLUMNS, best_marks, fmt, verdict
from tinyrun import TINY_AUDIT

TINY = TINY_AUDIT.replace("seed = 3", "seed = 3\nquiet = true")


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    torch.use_deterministic_algorithms(False)  # run_audit switches it on process-wide
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    (root / "tiny.toml").write_text(TINY)
    return root


@pytest.fixture(scope="module")
def run_a(root) -> Path:
    code, _, err = _run(["run", "--config", str(root / "tiny.toml"), "--out", str(root / "a")])
    assert code == 0, err
    return root / "a"


@pytest.fixture(scope="module")
def run_b(root) -> Path:
    """A second, smaller run differing in seed and methods, for `compare`."""
    code, _, err = _run(
        [
            "run",
            "--config",
            str(root / "tiny.toml"),
            "--seed",
            "4",
            "--rounds",
            "2",
            "--methods",
            "mganai-passive,class-gan",
            "--out",
            str(root / "b"),
        ]
    )
    assert code == 0, err
    return root / "b"


class Page(HTMLParser):
    """Collects every image source, every link target and the text of every table cell."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(a)
        if tag == "script":
            self.scripts += 1
        for key in ("href", "src"):
            if key in a and tag != "img":
                self.links.append(a[key])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _decode(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:40]
    return base64.b64decode(src[len(prefix) :], validate=True)


def test_report_is_self_contained_and_shows_every_method(run_a):
    html = (run_a / "report.html").read_text(encoding="utf-8")
    page = _page(run_a / "report.html")
    assert page.scripts == 0 and page.links == []  # nothing to fetch, nothing to run
    assert not re.search(r"(?:src|href)\s*=\s*\"(?!data:)", html)
    metrics = json.loads((run_a / "metrics.json").read_text())
    table = html.split('id="comparison-table"')[1].split("</table>")[0]
    for name in ALL_METHODS:
        assert f'<td class="name">{name}</td>' in table, name
        # The headline number of every method is shown as computed.
        assert fmt(metrics["methods"][name]["joint_success"], "rate") in table
    text = " ".join(page.text)
    for needle in ("Most user-level leakage:", "oracle", "peak memory", "Configuration", "identity_weight"):
        assert needle in text, needle
    assert "like no client" in text and "Threat model updates-only" in text
    for img in page.images:  # every embedded image is a PNG that Pillow decodes
        Image.open(io.BytesIO(_decode(img["src"]))).verify()


def test_metrics_hold_the_open_set_rates_and_the_identity_against_other_clients(run_a):
    metrics = json.loads((run_a / "metrics.json").read_text())
    oracle = metrics["oracle"]
    assert 0 < oracle["open_set_threshold"] < 2 and oracle["open_set_quantile"] == 0.95
    assert 0 <= oracle["heldout_data_like_rate"] <= 1 and 0 <= oracle["heldout_softened_data_like_rate"] <= 1
    assert oracle["as_others_clients"] == [0, 2]  # every client but the victim (1 of 3)
    for name, m in metrics["methods"].items():
        for key in ("victim_identity_rate", "class_accuracy", "joint_success"):
            assert 0 <= m[key] <= min(m[f"{key}_closed_set"], m["data_like_rate"]) <= 1, (name, key)
        assert m["identity_advantage"] == pytest.approx(m["victim_identity_rate"] - m["identity_as_others"])
    for blind in ("class-gan", "no-identity"):  # they ignore whose data they are asked for
        assert metrics["methods"][blind]["identity_advantage"] == 0.0
    assert metrics["threat_model"] == {"name": "updates-only", "public": None}


def test_each_method_grid_is_embedded_byte_for_byte(run_a):
    html = (run_a / "report.html").read_text(encoding="utf-8")
    metrics = json.loads((run_a / "metrics.json").read_text())
    for name in ALL_METHODS:
        figure = html.split(f'id="grid-{name}"')[1].split("</figure>")[0]
        src = re.search(r'src="([^"]+)"', figure).group(1)
        png = _decode(src)
        assert png == (run_a / metrics["artefacts"]["grids"][name]).read_bytes()
        img = Image.open(io.BytesIO(png))
        # 10 class rows of 16-px cells with 1-px lines, x2; three panels of 2 cells and two spacer cells.
        assert img.size == (2 * (8 * 17 + 1), 2 * (10 * 17 + 1))


def _cell(grid: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 16x16 cell at (row, col) of a x2-scaled grid with 1-px lines."""
    y, x = 2 * (1 + 17 * row), 2 * (1 + 17 * col)
    return grid[y : y + 32 : 2, x : x + 32 : 2]


def test_grid_shows_the_victim_beside_the_method_beside_another_client(run_a):
    metrics = json.loads((run_a / "metrics.json").read_text())
    data = load_dataset(DataConfig(clients=3), seed=3)
    victim, other = 1, metrics["artefacts"]["other_client"]
    assert other != victim
    grid = np.asarray(Image.open(run_a / "mganai-passive.png"))
    for c in (0, 7):
        for k, col in ((victim, 0), (other, 6)):
            client = data.clients[k]
            expected = to_uint8(client.x_train[client.y_train == c][:1])[0, ..., 0]
            assert np.array_equal(_cell(grid, c, col), expected), (c, k)
    # Between the panels: white spacer cells; in the middle: the method's samples, not a copy of either side.
    assert (_cell(grid, 0, 2) == 255).all() and (_cell(grid, 0, 5) == 255).all()
    assert not np.array_equal(_cell(grid, 0, 3), _cell(grid, 0, 0))


def test_representatives_of_several_clients_are_shown(run_a):
    metrics = json.loads((run_a / "metrics.json").read_text())
    reps = metrics["artefacts"]["representatives"]
    assert reps[0]["client"] == 1 and len({r["client"] for r in reps}) == 3  # victim first, all 3
    html = (run_a / "report.html").read_text(encoding="utf-8")
    for r in reps:
        assert base64.b64encode((run_a / r["file"]).read_bytes()).decode() in html


def test_curves_csv_has_every_method_every_k_rounds_and_after_the_final_steps(run_a):
    with (run_a / "curves.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for name in ALL_METHODS:
        mine = [(int(r["round"]), r["stage"]) for r in rows if r["method"] == name]
        assert mine == [(2, "fl"), (4, "fl"), (4, "final")], name
    for r in rows:
        for key in ("victim_identity_rate", "class_accuracy", "joint_success"):
            assert 0 <= float(r[key]) <= 1
        # 2 samples per class x 10 classes: every rate is a multiple of 1/20.
        assert float(r["joint_success"]) * 20 == pytest.approx(round(float(r["joint_success"]) * 20))
        assert float(r["joint_success"]) <= min(float(r["victim_identity_rate"]), float(r["class_accuracy"]))
    img = Image.open(run_a / "attack_curves.png")
    assert img.format == "PNG" and img.size[0] > 500


def test_curves_do_not_change_the_numbers(run_a, root):
    # The same config without curves (a file, since curve_every has no flag).
    (root / "nocurves.toml").write_text(TINY.replace("curve_every = 2", "curve_every = 0"))
    code, _, err = _run(["run", "--config", str(root / "nocurves.toml"), "--out", str(root / "nocurves")])
    assert code == 0, err
    with_curves = json.loads((run_a / "metrics.json").read_text())
    without = json.loads((root / "nocurves" / "metrics.json").read_text())
    assert without["methods"] == with_curves["methods"] and without["fl"] == with_curves["fl"]
    assert not (root / "nocurves" / "curves.csv").exists() and "curves" not in without["artefacts"]
    assert "curve_every = 0" in (root / "nocurves" / "report.html").read_text()


def test_report_command_rerenders_identically_without_retraining(run_a, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(run_a, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    for name in ("report.html", "fl_curve.png", "attack_curves.png"):
        (copy / name).unlink()

    def no_training(*args, **kwargs):
        raise AssertionError("report must not train anything")

    monkeypatch.setattr("mganai.eval.oracle.train_oracle", no_training)
    monkeypatch.setattr("mganai.fl.server.FedAvgSimulator.run", no_training)
    code, stdout, err = _run(["report", str(copy)])
    assert code == 0, err
    assert "report.html" in stdout
    after = {p.name: p.read_bytes() for p in copy.iterdir()}
    assert after == before  # every file, including the report and its plots, byte for byte


def test_report_names_a_missing_grid_and_writes_nothing(run_a, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_a, copy)
    (copy / "report.html").unlink()
    (copy / "class-gan.png").unlink()
    code, stdout, err = _run(["report", str(copy)])
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("mganai: error:") and "class-gan.png" in err
    assert not (copy / "report.html").exists()


@pytest.mark.parametrize("command", ["report", "compare"])
def test_directory_without_metrics_is_a_one_line_error(tmp_path, command, run_a):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = (
        [command, str(empty)]
        if command == "report"
        else [command, str(run_a), str(empty), "--out", str(tmp_path / "cmp")]
    )
    code, stdout, err = _run(args)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("mganai: error:")
    assert str(empty) in err and "metrics.json" in err and "Traceback" not in err
    assert not (tmp_path / "cmp").exists()


def test_fl_only_run_gets_a_report_too(tmp_path):
    out = tmp_path / "fl"
    code, _, err = _run(["run", "--clients", "2", "--rounds", "2", "--methods", "none", "--quiet", "--out", str(out)])
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "No attack method ran" in html and "comparison-table" not in html
    assert len(_page(out / "report.html").images) == 1  # the FL curve


def test_compare_puts_two_runs_in_one_table_and_plot(run_a, run_b, tmp_path):
    dest = tmp_path / "cmp"
    code, stdout, err = _run(["compare", str(run_a), str(run_b), "--out", str(dest)])
    assert code == 0, err
    for label in ("a", "b"):
        assert re.search(rf"^{label}\s", stdout, re.MULTILINE), label
    for name in ALL_METHODS:
        assert name in stdout
    assert re.search(r"^mean of 2 runs\s+mganai-passive", stdout, re.MULTILINE)  # in both runs: averaged
    assert re.search(r"^mean of 2 runs\s+class-gan", stdout, re.MULTILINE) and "mean of 1 run" not in stdout
    with (dest / "compare.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(ALL_METHODS) + 2 + 2  # a's five and b's two methods, two means
    mean = next(r for r in rows if r["run"] == "mean of 2 runs" and r["method"] == "class-gan")
    pair = [float(r["joint_success"]) for r in rows if r["method"] == "class-gan" and r["run"] in ("a", "b")]
    assert float(mean["joint_success"]) == pytest.approx(statistics.fmean(pair))
    assert float(mean["joint_success_sd"]) == pytest.approx(statistics.stdev(pair))
    line = next(x for x in stdout.splitlines() if x.startswith("mean of 2 runs") and "class-gan" in x)
    assert f"{statistics.fmean(pair):.3f}±{statistics.stdev(pair):.3f}" in line  # mean ± sd in the terminal too
    metrics_b = json.loads((run_b / "metrics.json").read_text())
    row = next(r for r in rows if r["run"] == "b" and r["method"] == "class-gan")
    assert float(row["joint_success"]) == pytest.approx(metrics_b["methods"]["class-gan"]["joint_success"])
    assert "seed=4" in row["settings"] and "fl.rounds=2" in row["settings"]
    page = _page(dest / "compare.html")
    assert len(page.images) == 1 and page.scripts == 0
    Image.open(io.BytesIO(_decode(page.images[0]["src"]))).verify()
    assert _decode(page.images[0]["src"]) == (dest / "compare.png").read_bytes()


def test_best_marks_follow_each_columns_direction():
    rows = {
        "a": {
            "joint_success": 0.5,
            "fl_accuracy_cost": 0.02,
            "nn_ssim_others": 0.9,
            "victim_accuracy_cost": float("nan"),
        },
        "b": {"joint_success": 0.5, "fl_accuracy_cost": 0.0, "nn_ssim_others": 0.1, "victim_accuracy_cost": 0.1},
        "c": {"joint_success": 0.2, "fl_accuracy_cost": 0.0, "nn_ssim_others": 0.5, "victim_accuracy_cost": 0.3},
    }
    marks = best_marks(rows)
    assert marks["joint_success"] == {"a", "b"}  # higher is more leakage; ties all marked
    assert marks["fl_accuracy_cost"] == {"b", "c"}  # lower cost is better
    assert marks["nn_ssim_others"] == set()  # context, not ranked
    assert marks["victim_accuracy_cost"] == {"b"}  # NaN never wins
    assert best_marks({"a": {"joint_success": 0.1}, "b": {"joint_success": 0.1}})["joint_success"] == set()
    assert {c.key for c in COLUMNS} >= {"victim_identity_rate", "class_accuracy", "nn_ssim_victim", "ssim_gap"}


def _dark_share(png: Path) -> float:
    grey = np.asarray(Image.open(png).convert("L"))
    return float((grey < 15).mean())  # near-black: the digits' background; page text is #1a1a1a (26) and lighter


def _screenshot(html: Path, png: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium is not None
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1280,2400",
                f"--screenshot={png}",
                html.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )


@pytest.mark.browser
@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="chromium not installed (apt-get install chromium; .ci/run installs it when it can)",
)
def test_real_browser_renders_the_embedded_images(run_a, tmp_path):
    """Headless Chromium opens the report from disk; the grids (black digit backgrounds) must be drawn.

    Control: the same page with every image's data removed draws no near-black pixels at all.
    """
    shot = tmp_path / "shot.png"
    _screenshot(run_a / "report.html", shot)
    blank = tmp_path / "blank.html"
    blank.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', (run_a / "report.html").read_text()))
    control = tmp_path / "control.png"
    _screenshot(blank, control)
    assert Image.open(shot).size == (1280, 2400)
    real, none = _dark_share(shot), _dark_share(control)
    assert real > 0.02 and none < 0.002, (real, none)


def _metrics(per_round: list[float], **methods: dict) -> dict:
    return {
        "config": {"data": {"clients": 10}, "attack": {"victim": 2}},
        "fl": {"test_accuracy_per_round": per_round},
        "methods": methods,
    }


def _scores(joint: float, identity: float, fl_cost: float = 0.0, ssim: float = 0.3) -> dict:
    return {
        "joint_success": joint,
        "victim_identity_rate": identity,
        "class_accuracy": 0.9,
        "nn_ssim_victim": ssim,
        "fl_test_accuracy": 0.9 - fl_cost,
        "fl_accuracy_cost": fl_cost,
        "victim_accuracy_cost": 0.0,
    }


def test_verdict_names_the_most_leaking_method_its_size_and_cost():
    text = " ".join(
        verdict(
            _metrics(
                [0.5, 0.9],
                **{
                    "mganai-passive": _scores(0.42, 0.6),
                    "mganai-active": _scores(0.3, 0.8, fl_cost=0.021),
                    "class-gan": _scores(0.05, 0.1),
                },
            )
        )
    )
    assert text.startswith("Most leakage: mganai-passive. 42.0% ") and "client 2" in text and "1/10 = 10.0%" in text
    assert "(unchanged vs. no attack)" in text  # passive: FL untouched
    assert "active variant" in text and "shared-model accuracy −2.1 pts" in text
    assert "class-level GAN" in text and "5.0%" in text and "Warning" not in text


def test_verdict_warns_about_diverged_fl_and_invalid_images():
    lines = verdict(
        _metrics(
            [0.5, 0.8, 0.1],
            **{"class-gan": _scores(0.1, 1.0, ssim=float("nan")), "representatives": _scores(0.05, 0.2)},
        )
    )
    warnings = [line for line in lines if line.startswith("Warning")]
    assert len(warnings) == 2
    assert "diverged" in warnings[0] and "80.0% in round 2" in warnings[0] and "10.0%" in warnings[0]
    assert "class-gan" in warnings[1] and "representatives" not in warnings[1]


def test_realism_warnings_name_methods_unlike_real_data_or_collapsed():
    from mganai.eval.metrics import sample_diversity
    from mganai.report.tables import realism_warnings

    classes = torch.arange(3).repeat_interleave(4)
    same = torch.zeros(12, 1, 8, 8)
    varied = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert sample_diversity(same, classes) == 0 and sample_diversity(varied, classes) > 0.2
    metrics = {
        "reference": {"heldout_nn_ssim_victim": 0.85, "heldout_nn_ssim_others": 0.43, "victim_diversity": 0.15},
        "methods": {
            "junk": {"nn_ssim_victim": 0.35, "diversity_ratio": 0.05},
            "good": {"nn_ssim_victim": 0.60, "diversity_ratio": 0.90},
        },
    }
    unlike, collapsed = realism_warnings(metrics)
    assert "junk" in unlike and "good" not in unlike and "0.430" in unlike
    assert "junk" in collapsed and "good" not in collapsed
    metrics["methods"]["junk"] = {"nn_ssim_victim": 0.50, "diversity_ratio": 0.5}  # the default run's rows of one
    (collapsed,) = realism_warnings(metrics)
    assert "junk" in collapsed and "one image per class" in collapsed
    metrics["methods"]["junk"] = {"nn_ssim_victim": 0.50, "diversity_ratio": 0.75}  # more than 3 real images give
    assert realism_warnings(metrics) == []


def test_a_headline_from_one_image_per_class_carries_its_caveat_right_under_it():
    """The default run of 2026-12-03: active 86.5% joint, but every row of its grid is one repeated image."""
    metrics = _metrics(
        [0.5, 0.9],
        **{
            "mganai-active": {**_scores(0.865, 0.87), "diversity_ratio": 0.438},
            "mganai-passive": {**_scores(0.705, 0.705), "diversity_ratio": 0.476},
            "representatives": {**_scores(0.085, 0.275), "diversity_ratio": 2.42},
        },
    )
    lines = verdict(metrics)
    assert lines[0].startswith("Most leakage: mganai-active (about one image per class: read the warning below).")
    assert lines[1].startswith("Warning: mganai-active, mganai-passive draw about one image per class")
    assert "0.438, 0.476" in lines[1] and "representatives" not in lines[1]
    assert sum("one image per class (diversity" in line for line in lines) == 1  # said once, under the headline
    metrics["methods"]["mganai-active"]["diversity_ratio"] = 0.9
    lines = verdict(metrics)
    assert lines[0].startswith("Most leakage: mganai-active. 86.5%")
    assert lines[-1].startswith("Warning: mganai-passive draws about one image per class")  # still said, at the end


def test_a_smoke_run_says_so_first():
    metrics = {**_metrics([0.5, 0.9], **{"mganai-passive": _scores(0.4, 0.5)}), "smoke_run": True}
    assert verdict(metrics)[0].startswith("Warning: smoke run (--quick)")
    assert not any("smoke" in line for line in verdict({**metrics, "smoke_run": False}))
