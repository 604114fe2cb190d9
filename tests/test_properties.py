"""Property-based tests: bad settings and garbage dataset files always end in one clean line, never a traceback.

Every example runs `mganai.cli.main` in this process (no subprocesses) and checks:
exit code 2, exactly one stderr line `mganai: error: ...` naming the problem,
no traceback, and --out not even created.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mganai.audit.run as audit
from mganai.config import ALL_METHODS, SECTIONS, ConfigError, RunConfig, build_config
from tinyrun import run_cli

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)  # what TOML strings can hold
ANY_VALUE = st.one_of(INT64, st.floats(), TEXT, st.booleans(), st.lists(TEXT, max_size=3))


def _assert_clean_refusal(code: int, stdout: str, err: str, out: Path, names: tuple[str, ...] = ()) -> str:
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mganai: error: "), err
    assert "Traceback" not in err and stdout == ""
    assert not out.exists(), "nothing may be written to --out"
    if names:
        assert any(n in lines[0] for n in names), (names, lines[0])
    return lines[0]


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON escapes of control characters are TOML escapes too
    return str(v)


def _toml(key: str, value: object) -> str:
    section, _, name = key.rpartition(".")
    line = f"{name} = {_toml_value(value)}\n"
    return f"[{section}]\n{line}" if section else line


# --- any value for any setting: a RunConfig or one ConfigError line ------------------------------

KEYS = [f.name for f in __import__("dataclasses").fields(RunConfig) if f.name not in SECTIONS] + [
    f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in __import__("dataclasses").fields(cls)
]


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), value=ANY_VALUE)
def test_any_value_for_any_setting_is_accepted_or_one_line_naming_it(key, value):
    try:
        cfg = build_config({}, {key: value})
    except ConfigError as exc:
        msg = str(exc)
        assert "\n" not in msg and key.rpartition(".")[2] in msg, (key, value, msg)
    else:
        assert isinstance(cfg, RunConfig)


# --- invalid settings through the command line (TOML file) -------------------------------------

NEG_OR_ZERO = st.integers(min_value=-(2**63), max_value=0)
NON_POSITIVE = st.floats(max_value=0.0) | st.sampled_from([math.nan, math.inf, -math.inf])
INVALID = {
    "data.clients": st.integers(min_value=-(2**63), max_value=1),
    "fl.rounds": NEG_OR_ZERO,
    "fl.local_epochs": NEG_OR_ZERO,
    "fl.batch_size": NEG_OR_ZERO,
    "fl.lr": NON_POSITIVE,
    "fl.max_update_norm": NON_POSITIVE,
    "fl.dropout": st.floats(min_value=1.0) | st.floats(max_value=-1e-9),
    "fl.client_fraction": st.floats(min_value=1.0, exclude_min=True) | st.floats(max_value=0.0),
    "fl.momentum": st.floats(min_value=1.0) | st.floats(max_value=-1e-9),
    "fl.engine": TEXT.filter(lambda s: s not in ("vmap", "loop")),
    "data.partition": TEXT.filter(lambda s: s not in ("iid", "dirichlet")),
    "data.resolution": INT64.filter(lambda r: r not in (0, 16, 28, 32, 64)),
    "attack.victim": st.integers(min_value=10, max_value=2**63 - 1) | st.integers(min_value=-(2**63), max_value=-1),
    "attack.methods": st.lists(
        TEXT.filter(lambda s: s.strip() not in (*ALL_METHODS, "none", "")), min_size=1, max_size=3
    ),
    "attack.gan_lr": NON_POSITIVE,
    "attack.inversion_steps": NEG_OR_ZERO,
    "seed": st.integers(min_value=2**31, max_value=2**63 - 1) | st.integers(min_value=-(2**63), max_value=-1),
    "eval.oracle_epochs": NEG_OR_ZERO,
    "data.public_clients": st.integers(min_value=9, max_value=2**63 - 1)
    | st.integers(min_value=-(2**63), max_value=-1),
    "fl.lr_min_ratio": st.floats(min_value=1.0, exclude_min=True) | st.floats(max_value=-1e-9),
    "fl.lr_schedule": TEXT.filter(lambda s: s not in ("constant", "cosine")),
}
WRONG_TYPE = st.sampled_from(["data.clients", "fl.rounds", "fl.lr", "seed", "data.user_styles", "fl.engine"])


@st.composite
def bad_setting(draw) -> tuple[str, object]:
    kind = draw(st.sampled_from(["range", "type", "unknown"]))
    if kind == "range":
        key = draw(st.sampled_from(sorted(INVALID)))
        return key, draw(INVALID[key])
    if kind == "type":
        key = draw(WRONG_TYPE)
        wrong = {"data.user_styles": INT64, "fl.engine": INT64}.get(key, TEXT | st.booleans())
        return key, draw(wrong)
    section = draw(st.sampled_from(["", *SECTIONS]))
    name = draw(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda n: n not in KEYS and n not in SECTIONS)
    )
    known = {f.split(".")[-1] for f in KEYS if f.startswith(f"{section}.")} if section else set(KEYS)
    if name in known:
        name += "_x"
    return (f"{section}.{name}" if section else name), 1


@FAST
@given(setting=bad_setting())
def test_invalid_setting_in_a_config_file_is_one_line_and_writes_nothing(setting):
    key, value = setting
    with tempfile.TemporaryDirectory() as tmp:
        cfg, out = Path(tmp) / "bad.toml", Path(tmp) / "out"
        cfg.write_text(_toml(key, value), encoding="utf-8")
        code, stdout, err = run_cli(["run", "--config", str(cfg), "--out", str(out), "--quiet"])
        _assert_clean_refusal(code, stdout, err, out, names=(key.rpartition(".")[2],))


FLAG_VALUES = {
    "--clients": st.integers(max_value=1).map(str) | TEXT,
    "--rounds": st.integers(max_value=0).map(str) | TEXT,
    "--lr": st.floats(max_value=0.0).map(repr) | st.just("nan") | st.just("inf"),
    "--dropout": st.floats(min_value=1.0).map(repr) | st.just("-0.5"),
    "--max-update-norm": st.floats(max_value=0.0).map(repr),
    "--fraction": st.floats(min_value=1.0, exclude_min=True).map(repr),
    "--engine": TEXT.filter(lambda s: s not in ("vmap", "loop")),
    "--methods": TEXT.filter(
        lambda s: (
            s.strip()
            and all(m.strip() not in (*ALL_METHODS, "none") for m in s.split(","))
            and any(m.strip() for m in s.split(","))
        )
    ),
    "--victim": st.integers(min_value=10).map(str),
    "--checkpoint-every": st.integers(max_value=-1).map(str),
    "--public-clients": st.integers(min_value=9).map(str) | st.integers(max_value=-1).map(str),
}


@FAST
@given(flag=st.sampled_from(sorted(FLAG_VALUES)), data=st.data())
def test_invalid_flag_value_is_one_line_and_writes_nothing(flag, data):
    value = data.draw(FLAG_VALUES[flag])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        code, stdout, err = run_cli(["run", f"{flag}={value}", "--out", str(out), "--quiet"])
        _assert_clean_refusal(code, stdout, err, out)


# --- garbage dataset files ------------------------------------------------------------------------


def _idx(images: bytes, labels: bytes, n: int, side: int) -> tuple[bytes, bytes]:
    return (struct.pack(">IIII", 0x803, n, side, side) + images, struct.pack(">II", 0x801, n) + labels)


VALID_IMAGES, VALID_LABELS = _idx(bytes(range(256)) * 3, bytes(i % 10 for i in range(12)), 12, 8)


@st.composite
def damaged(draw, good: bytes) -> bytes:
    """A valid file with its header or body damaged: bytes overwritten, cut short, or replaced by noise."""
    how = draw(st.sampled_from(["overwrite", "truncate", "noise"]))
    if how == "noise":
        return draw(st.binary(max_size=64))
    if how == "truncate":
        return good[: draw(st.integers(0, len(good) - 1))]
    data = bytearray(good)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, 15))] = draw(st.integers(0, 255))  # header bytes: magic, counts, sizes
    return bytes(data)


class _Loaded(Exception):
    """The data was read without complaint: the audit would start (not run here, to stay fast)."""


def _cli_on_dataset(dataset: str, out: Path) -> tuple[int, str, str]:
    def stop_after_loading(*args, **kwargs):
        raise _Loaded

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(audit, "run_trace", stop_after_loading)
        try:
            return run_cli(
                [
                    "run",
                    "--dataset",
                    dataset,
                    "--clients",
                    "2",
                    "--rounds",
                    "1",
                    "--methods",
                    "none",
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
        except _Loaded:
            return 0, "", ""


@FAST
@example(
    images=VALID_IMAGES[:3] + b"\x12" + VALID_IMAGES[4:], labels=VALID_LABELS, gz=False
)  # 18 dims: np.prod wrapped
@given(
    images=st.one_of(st.just(VALID_IMAGES), damaged(VALID_IMAGES)),
    labels=st.one_of(st.just(VALID_LABELS), damaged(VALID_LABELS)),
    gz=st.booleans(),
)
def test_garbage_idx_files_are_one_line_errors(images, labels, gz):
    with tempfile.TemporaryDirectory() as tmp:
        d, out = Path(tmp) / "idx", Path(tmp) / "out"
        d.mkdir()
        suffix = ".gz" if gz else ""
        (d / f"train-images-idx3-ubyte{suffix}").write_bytes(gzip.compress(images) if gz else images)
        (d / f"train-labels-idx1-ubyte{suffix}").write_bytes(gzip.compress(labels) if gz else labels)
        code, stdout, err = _cli_on_dataset(f"idx:{d}", out)
        if code == 0:  # the damage left a readable dataset
            assert err == "" or all(line.startswith("mganai: note: ") for line in err.splitlines())
            assert not out.exists()
        else:
            _assert_clean_refusal(code, stdout, err, out)


@FAST
@given(files=st.lists(st.binary(max_size=200), min_size=1, max_size=3), ext=st.sampled_from([".png", ".jpg", ".pgm"]))
def test_garbage_image_files_in_a_folder_dataset_are_one_line_errors(files, ext):
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "folder", Path(tmp) / "out"
        for client in ("alice", "bob"):
            for i, blob in enumerate(files):
                (root / client / "cat").mkdir(parents=True, exist_ok=True)
                (root / client / "cat" / f"{i}{ext}").write_bytes(blob)
        code, stdout, err = _cli_on_dataset(f"folder:{root}", out)
        _assert_clean_refusal(code, stdout, err, out)
