"""The house rules that hold by structure, not by discipline: import direction, errors, registries, checkpoints."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mganai
from mganai.config import ALL_METHODS, RunConfig, build_config
from mganai.datasets import ALLOWED, DATASETS, has_natural_clients, parse
from mganai.errors import CheckpointError, ConfigError, DataError, MganaiError, ReportError
from mganai.methods import METHODS
from tinyrun import run_cli

SRC = Path(mganai.__file__).resolve().parent


def _imports(path: Path, package: str | None = None) -> set[str]:
    """Every module a file imports, at the top or inside a function (relative imports resolved against the file's
    package, by default the one its place under src/ says)."""
    package = package or ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _modules(subpackage: str) -> list[Path]:
    return sorted((SRC / subpackage).rglob("*.py"))


def _reaches(imports: set[str], package: str) -> set[str]:
    return {m for m in imports if m == package or m.startswith(package + ".")}


@pytest.mark.parametrize("forbidden", ["mganai.data", "mganai.eval"])
def test_the_attack_never_imports_data_or_evaluation_code(forbidden):
    """The threat model: the attack sees only what a server sees (RoundObservation), never the clients' data
    or the oracle."""
    offenders = {str(p.relative_to(SRC)): _reaches(_imports(p), forbidden) for p in _modules("attack")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_import_contract_check_can_fail(tmp_path):
    bad = tmp_path / "probe.py"  # as if it were mganai/attack/probe.py
    bad.write_text("def f():\n    from mganai.data import load_dataset\n    from ..eval import oracle\n")
    found = _imports(bad, package="mganai.attack")
    assert _reaches(found, "mganai.data") == {"mganai.data", "mganai.data.load_dataset"}
    assert _reaches(found, "mganai.eval") == {"mganai.eval", "mganai.eval.oracle"}


@pytest.mark.subprocess
def test_importing_every_attack_module_loads_no_data_or_evaluation_module():
    """At run time too (through the config, the device helpers, anything): a fresh interpreter."""
    names = [f"mganai.attack.{p.stem}" for p in _modules("attack") if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[:2] in (['mganai', 'data'], ['mganai', 'eval']))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_only_the_flower_package_imports_flwr():
    offenders = {
        str(p.relative_to(SRC))
        for p in sorted(SRC.rglob("*.py"))
        if _reaches(_imports(p), "flwr") and p.relative_to(SRC).parts[0] != "flower"
    }
    assert offenders == set()


@pytest.mark.parametrize(
    ("layer", "forbidden"), [("data", "mganai.fl"), ("fl", "mganai.attack"), ("report", "mganai.attack")]
)
def test_dependencies_point_one_way(layer, forbidden):
    """data <- fl <- attack; the report reads metrics and images, never attack internals."""
    offenders = {str(p.relative_to(SRC)): _reaches(_imports(p), forbidden) for p in _modules(layer)}
    assert {k: v for k, v in offenders.items() if v} == {}


# --- one error family ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [ConfigError, DataError, CheckpointError, ReportError])
def test_every_error_kind_is_a_sibling_under_mganai_error(kind):
    assert issubclass(kind, MganaiError)
    others = {ConfigError, DataError, CheckpointError, ReportError} - {kind}
    assert not any(issubclass(kind, other) for other in others)


@pytest.mark.parametrize("kind", [ConfigError, DataError, CheckpointError, ReportError])
def test_the_command_line_maps_every_error_kind_to_one_line_and_exit_2(kind, monkeypatch):
    import mganai.cli.entry as entry  # main looks its commands up here

    def fail(args):
        raise kind("something the user can fix")

    monkeypatch.setattr(entry, "cmd_report", fail)
    code, out, err = run_cli(["report", "anywhere"])
    assert (code, out, err) == (2, "", "mganai: error: something the user can fix\n")


def test_data_and_device_code_no_longer_import_the_config_for_an_exception():
    for path in [*_modules("data"), SRC / "device.py"]:
        imported = _imports(path)
        assert "mganai.config.ConfigError" not in imported, path


# --- registries ------------------------------------------------------------------------------------


def test_the_method_list_everyone_reads_is_the_registry():
    from mganai.report.tables import METHOD_NOTES

    assert tuple(METHODS) == ALL_METHODS and list(METHODS) == RunConfig().attack.methods
    assert set(METHOD_NOTES) == set(METHODS) and all(METHOD_NOTES.values())
    code, out, _ = run_cli(["run", "--help"])
    assert code == 0 and ",".join(METHODS) in "".join(out.split())  # argparse wraps lines, at hyphens too


def test_registry_flags_decide_which_trace_a_method_needs():
    assert [m.name for m in METHODS.values() if m.changes_fl] == ["mganai-active"]
    assert {m.name for m in METHODS.values() if m.needs_representatives} == {
        "mganai-passive", "mganai-active", "no-identity", "representatives"
    }  # fmt: skip
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        build_config(overrides={"attack.methods": "nope"})


def test_bench_gan_replay_offers_every_passive_gan_of_the_registry():
    sys.path.insert(0, str(SRC.parents[1] / "bench"))
    try:
        import gan_replay
    finally:
        sys.path.pop(0)
    assert set(gan_replay.RECIPES) == {n for n, m in METHODS.items() if m.recipe and not m.changes_fl}


def test_the_dataset_registry_parses_every_spelling_and_knows_whose_clients_are_natural():
    assert ALLOWED.startswith("digits, mnist") and "folder:DIR" in ALLOWED
    assert parse("folder:/x")[0].name == "folder" and parse("folder:/x")[1] == "/x"
    assert parse("att-faces")[0] is parse("att-faces:/faces")[0] is DATASETS["att-faces"]
    for name in ("folder", "digits:x", "nope", "mnist:"):
        with pytest.raises(ConfigError):
            parse(name)
    names = ("digits", "mnist", "cifar10", "idx:/d", "folder:/d", "olivetti", "att-faces:/d", "folder")
    assert {d for d in names if has_natural_clients(d)} == {"folder:/d", "olivetti", "att-faces:/d"}
    code, out, _ = run_cli(["run", "--help"])
    assert code == 0 and all(d.spelling in "".join(out.split()) for d in DATASETS.values() if d.spelling)


@pytest.mark.subprocess
def test_importing_the_cli_and_the_registries_loads_no_torch():
    code = "import sys, mganai, mganai.cli, mganai.config; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# --- checkpointed objects declare all their attributes ----------------------------------------------


def test_every_checkpointed_object_declares_each_attribute_as_state_or_structure(small_fed, model, init_params, fl_cfg):
    """An attribute added to a checkpointed class without a decision (saved, or rebuilt from the config) fails
    here, instead of being silently left out of checkpoints and breaking bit-identical resumes."""
    from mganai.attack.active import VictimIsolation
    from mganai.attack.bank import RepresentativeBank
    from mganai.attack.gan import RECIPES, GanAttack
    from mganai.config import AttackConfig
    from mganai.eval.curves import CurveProbe
    from mganai.eval.oracle import train_oracle
    from mganai.fl.server import FedAvgSimulator

    attack = AttackConfig(start_round=0, reps_per_client=2, inversion_steps=1, gan_steps_per_round=1, gan_batch=4)
    bank = RepresentativeBank(model, (1, 16, 16), 4, attack, seed=0)
    gan = GanAttack(RECIPES["mganai"], model, bank, 10, 4, 0, (1, 16, 16), attack, 0)
    isolation = VictimIsolation(0, 1, 1)
    oracle = train_oracle(small_fed, 1, 1)
    probe = CurveProbe(oracle, 0, 10, 1, 0, 1, fl_cfg.rounds)
    probe.attach({"mganai-passive": gan})
    sim = FedAvgSimulator(model, init_params, small_fed, fl_cfg, 0, [isolation, bank, gan, probe], isolation)
    sim.run()
    for obj in (sim, bank, gan, isolation, oracle, probe):
        kind = type(obj)
        assert set(obj.state_dict()) == set(kind.STATE), kind.__name__
        assert set(vars(obj)) == set(kind.STATE) | set(kind.STRUCTURE), kind.__name__
        assert not set(kind.STATE) & set(kind.STRUCTURE), kind.__name__
    gan.new_attribute = 1  # what a developer adding state would do
    assert set(vars(gan)) != set(GanAttack.STATE) | set(GanAttack.STRUCTURE)


def test_the_package_facade_names_the_real_objects():
    import mganai.audit
    import mganai.config
    import mganai.data

    assert mganai.run_audit is mganai.audit.run_audit and mganai.build_config is mganai.config.build_config
    assert mganai.load_dataset is mganai.data.load_dataset and mganai.MganaiError is MganaiError
    assert mganai.METHODS is METHODS and mganai.DATASETS is DATASETS
    assert set(mganai.__all__) == {"__version__", *mganai._HOMES}
    assert all(getattr(mganai, name) is not None for name in mganai.__all__)
    with pytest.raises(AttributeError):
        _ = mganai.no_such_name
