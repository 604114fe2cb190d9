"""Every setting as a commented TOML file, generated from `mganai.config`'s dataclasses and their comments.

`mganai config` prints it (with the flags and `--config FILE` applied, so it also shows
what a run would use), and docs/usage.md embeds the defaults between two markers
(tests/test_config.py checks the copy; `python -m mganai.settings docs/usage.md`
rewrites it). A key's comment is the comment on its line in config.py, and a comment
line above a group of keys there heads that group here, so a key added to a dataclass
with a comment is documented without another edit.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import sys
import tokenize
from pathlib import Path
from typing import Any

from mganai import config
from mganai.config import SECTIONS, RunConfig

BEGIN = "<!-- settings: generated from src/mganai/config.py by `mganai config`; do not edit by hand -->"
END = "<!-- end of the generated settings -->"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One setting as config.py declares it: its key, the comment on its line, the comment lines above it."""

    key: str
    comment: str
    heading: list[str]


def entries(cls: type) -> list[Entry]:
    """The fields of one config dataclass with the comments of its source."""
    source = inspect.getsource(config)
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    out, previous_end = [], node.body[0].end_lineno or node.lineno  # the docstring
    for stmt in node.body[1:]:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            end = stmt.end_lineno or stmt.lineno
            heading = [comments[n] for n in range(previous_end + 1, stmt.lineno) if n in comments]
            inline = " ".join(comments[n] for n in range(stmt.lineno, end + 1) if n in comments)
            out.append(Entry(stmt.target.id, inline, heading))
            previous_end = end
    names = [f.name for f in dataclasses.fields(cls)]
    if [e.key for e in out] != names:  # pragma: no cover - a field declared in a way this reader misses
        raise RuntimeError(f"{cls.__name__}: fields {names}, read from its source {[e.key for e in out]}")
    return out


def toml_value(value: Any) -> str:
    """A setting's value as TOML (strings, booleans, numbers, lists of strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | list):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def settings_toml(cfg: RunConfig | None = None) -> str:
    """`cfg`'s settings (default: the defaults) as a TOML file, each key with its comment; a value other than
    the default says so."""
    cfg = cfg or RunConfig()
    default = RunConfig()
    lines = [
        "# mganai's settings: `mganai run --config FILE` reads a file like this (flags override it).",
        "# Every key is optional; a key left out keeps its default.",
    ]

    def block(obj: Any, base: Any, cls: type) -> None:
        for e in entries(cls):
            if cls is RunConfig and e.key in SECTIONS:  # the tables follow
                continue
            lines.extend(f"# {h}" for h in e.heading)
            value, was = getattr(obj, e.key), getattr(base, e.key)
            note = [e.comment] if e.comment else []
            if value != was:
                note.append(f"default {'unset' if was is None else toml_value(was)}")
            comment = f"  # {'; '.join(note)}" if note else ""
            if value is None:  # TOML has no null: an unset key is one left out of the file
                lines.append(f"# {e.key} (unset){comment}")
            else:
                lines.append(f"{e.key} = {toml_value(value)}{comment}")

    block(cfg, default, RunConfig)
    for name, cls in SECTIONS.items():
        lines += ["", f"[{name}]"]
        doc = (cls.__doc__ or "").strip().splitlines()
        if doc:
            lines.append(f"# {doc[0]}")
        block(getattr(cfg, name), getattr(default, name), cls)
    return "\n".join(lines) + "\n"


def doc_block() -> str:
    """What docs/usage.md holds between `BEGIN` and `END`."""
    return f"{BEGIN}\n\n```toml\n{settings_toml()}```\n\n{END}"


def embedded(text: str) -> str:
    """The generated block of a document (from BEGIN to END)."""
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    return text[start:stop]


def update(path: Path) -> bool:
    """Rewrite the generated block of `path`; True when it changed."""
    text = path.read_text(encoding="utf-8")
    new = text.replace(embedded(text), doc_block())
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # python -m mganai.settings docs/usage.md
    for arg in sys.argv[1:]:
        print(f"{arg}: {'updated' if update(Path(arg)) else 'up to date'}")
