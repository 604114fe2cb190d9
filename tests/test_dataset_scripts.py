"""The dataset scripts in scripts/: same seed, same bytes; the folder layout the loader reads; no half-built DIR.

The builds need Debian packages (hershey-fonts-data; the icon themes and librsvg2-bin):
those tests are skipped, with the apt-get line, where the packages are missing.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import datasetkit  # noqa: E402 - scripts/ is not a package: importable only after the path insert above
import make_object_dataset  # noqa: E402
import make_sketch_dataset  # noqa: E402
import make_writer_dataset  # noqa: E402


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.*"))}


def _needs_hershey() -> None:
    if not (make_writer_dataset.FONT_DIR / "cursive.jhf").is_file():
        pytest.skip("Hershey fonts missing: apt-get install hershey-fonts-data")


def _needs_icons() -> None:
    table = make_object_dataset.designs(
        make_object_dataset.find_icons({n for ns in make_object_dataset.CLASSES.values() for n in ns})
    )
    if any(len(d) < make_object_dataset.MIN_DESIGNS for d in table.values()) or not shutil.which("rsvg-convert"):
        pytest.skip(f"icon themes missing: apt-get install {make_object_dataset.PACKAGES}")


def test_writer_dataset_is_deterministic_and_laid_out_for_the_loader(tmp_path):
    _needs_hershey()
    argv = ["--clients", "3", "--per-client", "20", "--seed", "5"]
    make_writer_dataset.main([str(tmp_path / "a"), *argv])
    make_writer_dataset.main([str(tmp_path / "b"), *argv])
    a = _digest(tmp_path / "a")
    assert a == _digest(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["amira", "bruno", "chen", "manifest.json"]
    pngs = [k for k in a if k.endswith(".png")]
    assert len(pngs) == 3 * 20
    assert {Path(k).parent.name for k in pngs} == set(make_writer_dataset.CHARS)
    img = Image.open(tmp_path / "a" / pngs[0])
    assert img.size == (28, 28) and img.mode == "L"
    # another seed, other images
    make_writer_dataset.main([str(tmp_path / "c"), "--clients", "3", "--per-client", "20", "--seed", "6"])
    assert _digest(tmp_path / "c") != a


def test_sketch_dataset_is_deterministic_and_needs_no_package(tmp_path):
    make_sketch_dataset.main([str(tmp_path / "a"), "--clients", "2", "--per-client", "20", "--size", "20"])
    make_sketch_dataset.main([str(tmp_path / "b"), "--clients", "2", "--per-client", "20", "--size", "20"])
    a = _digest(tmp_path / "a")
    assert a == _digest(tmp_path / "b")
    pngs = [k for k in a if k.endswith(".png")]
    assert len(pngs) == 40 and {Path(k).parent.name for k in pngs} == set(make_sketch_dataset.CLASSES)
    assert Image.open(tmp_path / "a" / pngs[0]).size == (20, 20)


def test_object_dataset_is_deterministic_and_colour(tmp_path):
    _needs_icons()
    argv = ["--clients", "2", "--per-client", "20"]
    make_object_dataset.main([str(tmp_path / "a"), *argv])
    make_object_dataset.main([str(tmp_path / "b"), *argv])
    a = _digest(tmp_path / "a")
    assert a == _digest(tmp_path / "b")
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert len(jpgs) == 2 * 20 and {Path(k).parent.name for k in jpgs} == set(make_object_dataset.CLASSES)
    img = Image.open(tmp_path / "a" / jpgs[0])
    assert img.size == (32, 32) and img.mode == "RGB"


def test_non_empty_output_is_refused_without_overwrite(tmp_path, capsys):
    _needs_hershey()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exc:
        make_writer_dataset.main([str(out), "--clients", "2", "--per-client", "20"])
    assert exc.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    make_writer_dataset.main([str(out), "--clients", "2", "--per-client", "20", "--overwrite"])
    assert not (out / "keep.txt").exists() and (out / "amira").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no DIR.tmp-* or DIR.old-* left


def test_missing_package_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(make_writer_dataset, "FONT_DIR", tmp_path / "nowhere")
    with pytest.raises(SystemExit) as exc:
        make_writer_dataset.main([str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and "apt-get install hershey-fonts-data" in err
    monkeypatch.setattr(make_object_dataset, "ICON_ROOT", tmp_path / "nowhere")
    with pytest.raises(SystemExit) as exc:
        make_object_dataset.main([str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and "apt-get install librsvg2-bin" in err
    assert not (tmp_path / "out").exists()


def test_a_failed_build_leaves_no_dataset(tmp_path):
    def build(root: Path) -> int:
        (root / "alice" / "a").mkdir(parents=True)
        (root / "alice" / "a" / "0.png").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        datasetkit.build_atomically(tmp_path / "out", False, build)
    assert list(tmp_path.iterdir()) == []
