"""The command line: parse, call, print. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from mganai import __version__
from mganai.config import build_config, load_toml
from mganai.datasets import DATASETS, dataset_help, has_natural_clients
from mganai.errors import ConfigError, MganaiError
from mganai.methods import ALL_METHODS, NONE

# flag dest -> dotted config key
FLAG_KEYS = {
    "dataset": "data.dataset",
    "clients": "data.clients",
    "partition": "data.partition",
    "alpha": "data.dirichlet_alpha",
    "resolution": "data.resolution",
    "user_styles": "data.user_styles",
    "max_per_client": "data.max_per_client",
    "faces_per_client": "data.faces_per_client",
    "cache_dir": "data.cache_dir",
    "public": "data.public",
    "public_clients": "data.public_clients",
    "methods": "attack.methods",
    "rounds": "fl.rounds",
    "local_epochs": "fl.local_epochs",
    "batch_size": "fl.batch_size",
    "lr": "fl.lr",
    "fraction": "fl.client_fraction",
    "engine": "fl.engine",
    "dropout": "fl.dropout",
    "max_update_norm": "fl.max_update_norm",
    "seed": "seed",
    "device": "device",
    "out": "out",
    "quiet": "quiet",
    "threads": "threads",
    "preset": "preset",
    "defense": "defense.name",
    "dp_noise": "defense.dp_noise",
    "dp_clip": "defense.dp_clip",
    "dp_delta": "defense.dp_delta",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line `mganai: error: ...` (exit 2) like every other error, and a flag
    must be spelled out (`--round 6` is an error, not `--rounds 6`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.commands: Mapping[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        print(f"mganai: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; an unknown flag is reported by the command it follows, so the hint names its help."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        words = sys.argv[1:] if argv is None else argv
        before_command = unknown[0] in words[: words.index(args.command)]
        owner = parser if before_command else parser.commands[args.command]
        owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _parser() -> _Parser:
    p = _Parser(
        prog="mganai",
        description="Measure user-level privacy leakage in federated learning with the mGAN-AI attack.",
    )
    p.add_argument("--version", action="version", version=f"mganai {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    p.commands = sub.choices
    run = sub.add_parser(
        "run",
        help="simulate FedAvg, run the attack methods on the server, score them, write OUT/",
        description="Simulate FedAvg on a federated dataset with the attack watching from the server, "
        "score every method with an independent oracle, and write OUT/metrics.json and one grid PNG per method. "
        "Settings come from the defaults, then --config FILE, then these flags.",
    )
    _add_audit_flags(run)
    run.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="K",
        help="save OUT/checkpoint.pt every K rounds (default 0: only on SIGINT/SIGTERM)",
    )
    run.add_argument(
        "--resume", metavar="OUT", help="continue the interrupted run in OUT from OUT/checkpoint.pt (same settings)"
    )
    sim = sub.add_parser(
        "flower-sim",
        help="the same audit with FL run by Flower's simulation engine (needs mganai[flower])",
        description="Run the audit of `mganai run` inside Flower (pip install 'mganai[flower]'): a ServerApp with "
        "mganai's attack strategy and one virtual SuperNode per client in Flower's Ray simulation engine. "
        "Each ClientApp trains its client with the loop engine, so there is no --engine. "
        "Writes the same OUT/ as `mganai run`, with the same numbers as `mganai run --engine loop`.",
    )
    _add_audit_flags(sim, engine=False)
    sim.add_argument(
        "--workers", type=int, default=2, help="ClientApps trained at once (Ray actors of 1 CPU each; default 2)"
    )
    sim.add_argument("--flower-logs", action="store_true", help="show Flower's own INFO logs")
    for flag in ("--checkpoint-every", "--resume"):
        sim.add_argument(
            flag,
            metavar="-",
            help="not available in flower-sim: a Flower simulation cannot be stopped and continued at a round "
            "here (use `mganai run` for long audits)",
        )
    settings = sub.add_parser(
        "config",
        help="print every setting as a TOML file with its comment (with these flags applied)",
        description="Print the settings a run with these flags and --config FILE would use, as a TOML file with "
        "every key and what it does: `mganai config > audit.toml` gives a file to edit, `mganai config --quick` "
        "shows the quick preset. Keys only in TOML (the attack's schedule and weights, the evaluation) are here too.",
    )
    _add_audit_flags(settings)
    sweep = sub.add_parser(
        "sweep",
        help="one audit per setting of a grid (noise levels, defenses, FL regimes) and the privacy/utility curves",
        description="Run one audit per combination of the --vary values (plus an undefended reference) into "
        "OUT/<setting>/, training the oracle once, then write OUT/sweep.csv, OUT/sweep.png and OUT/compare.html. "
        "Methods default to mganai-passive,class-gan. Example: --vary defense.name=central-dp,client-dp,local-dp "
        "--vary defense.dp_noise=0.01,0.03,0.1,0.3,1",
    )
    _add_audit_flags(sweep)
    sweep.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="KEY=V1,V2,...",
        help="a setting (dotted key as in the TOML file) and its values; repeat for a grid",
    )
    report = sub.add_parser(
        "report",
        help="re-render OUT/report.html from OUT/metrics.json and the saved images (no retraining)",
        description="Re-render OUT/report.html (and its plots) from a finished run's metrics.json, "
        "curves.csv and PNGs.",
    )
    report.add_argument("out", metavar="OUT", help="output directory of 'mganai run'")
    compare = sub.add_parser(
        "compare",
        help="put several runs (seeds, victims, defenses...) into one table and plot",
        description="Compare finished runs: prints one table and writes DIR/compare.html, compare.csv and compare.png.",
    )
    compare.add_argument("runs", nargs="+", metavar="OUT", help="output directories of 'mganai run'")
    compare.add_argument(
        "--out", default="runs/compare", metavar="DIR", help="where to write the comparison (default runs/compare)"
    )
    return p


def _add_audit_flags(run: argparse.ArgumentParser, engine: bool = True) -> None:
    """The settings flags shared by `run`, `flower-sim` (whose clients always train with the loop engine), `config`
    and `sweep`."""
    run.add_argument("--config", metavar="FILE", help="TOML file with settings (flags override it)")
    run.add_argument(
        "--quick",
        dest="preset",
        action="store_const",
        const="quick",
        help="a smoke run: every stage on tiny budgets in under 30 s on 2 cores (4 clients, 6 rounds); its "
        "numbers only show that the tool works (its settings: `mganai config --quick`)",
    )
    run.add_argument(
        "--dataset",
        help=dataset_help(),
    )
    natural = ", ".join(d.spelling for d in DATASETS.values() if d.natural_clients and d.spelling)
    run.add_argument("--clients", type=int, help=f"number of FL clients N (default 10; {natural}: their own)")
    run.add_argument(
        "--partition", choices=["iid", "dirichlet"], help="how classes are split over clients (default iid)"
    )
    run.add_argument("--alpha", type=float, help="Dirichlet concentration for --partition dirichlet (default 0.5)")
    run.add_argument(
        "--resolution",
        type=int,
        help="image side: 16, 28, 32 or 64 (default per dataset: digits 16, MNIST family 16, cifar10 and faces 32, "
        "folder: the images' size; digits allow 16 or 28)",
    )
    run.add_argument(
        "--user-styles",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="per-client writer (grey) or colour (RGB) styles for datasets without natural users (default on)",
    )
    run.add_argument(
        "--max-per-client", type=int, help="cap on each client's samples, stratified (default 200, 0 = all; not digits)"
    )
    run.add_argument("--faces-per-client", type=int, help="faces: people per client (default 4: 10 clients of 40)")
    run.add_argument("--cache-dir", metavar="DIR", help="download cache (default $MGANAI_DATA or ~/.cache/mganai)")
    run.add_argument(
        "--public",
        metavar="SPEC",
        help="threat model public-data: the server also holds every image of this dataset (a --dataset spelling, "
        "not the federation's own data), brought to the federation's image shape (default: none, updates-only)",
    )
    run.add_argument(
        "--public-clients",
        type=int,
        metavar="K",
        help="threat model public-data: withhold K clients from FL and give their images to the server; they are "
        "the K highest-indexed clients that are not the victim, so every other client keeps its index and name "
        "(1 <= K <= clients - 2; not with --public)",
    )
    run.add_argument(
        "--victim", help="client whose private data the server attacks: index (default 0), or a folder: client's name"
    )
    run.add_argument("--rounds", type=int, help="FL rounds (default 40)")
    run.add_argument("--local-epochs", type=int, help="local epochs per round (default 2)")
    run.add_argument("--batch-size", type=int, help="local mini-batch size (default 16)")
    run.add_argument(
        "--lr",
        type=float,
        help="local SGD learning rate of the first round (default 0.1, cosine-decayed: fl.lr_schedule)",
    )
    run.add_argument("--fraction", type=float, help="share of clients sampled each round (default 1.0)")
    if engine:
        run.add_argument("--engine", choices=["vmap", "loop"], help="client training engine (default vmap)")
    run.add_argument(
        "--methods",
        help=f"comma-separated attack methods, or '{NONE}' for FL only (default: all of {','.join(ALL_METHODS)})",
    )
    run.add_argument("--seed", type=int, help="seed for everything; same seed, same numbers (default 0)")
    run.add_argument(
        "--device",
        help="where to compute: auto (default: cuda when torch sees a GPU, else cpu), cpu, cuda or cuda:N",
    )
    run.add_argument("--out", metavar="DIR", help="output directory (default runs/default)")
    run.add_argument("--quiet", action="store_true", default=None, help="no progress lines, only the summary")
    run.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU cores to compute on at once, one thread each (default 0: every core this process may use); "
        "the numbers do not depend on it",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="write into an --out that is not empty (files there are replaced)"
    )
    run.add_argument(
        "--dropout", type=float, help="chance a sampled client never answers a round (simulated faults; default 0)"
    )
    run.add_argument(
        "--max-update-norm",
        type=float,
        help="reject a client update longer than this (L2 over all weights) as faulty (default 1000)",
    )
    _add_defense_flags(run)


def _add_defense_flags(run: argparse.ArgumentParser) -> None:
    """--defense and its DP parameters (docs/defenses.md)."""
    from mganai.defenses import ALL_DEFENSES

    run.add_argument(
        "--defense",
        choices=ALL_DEFENSES,
        help="what protects the updates from the server (default none): DP clipping and noise at the server "
        "(central-dp), clipping at the clients (client-dp), noise at the clients (local-dp), secure aggregation "
        "(secagg), anonymised updates (shuffle)",
    )
    run.add_argument("--dp-noise", type=float, metavar="SIGMA", help="DP noise multiplier σ (noise std σ·C; default 1)")
    run.add_argument("--dp-clip", type=float, metavar="C", help="DP clipping norm C (L2, all weights; default 1)")
    run.add_argument("--dp-delta", type=float, metavar="DELTA", help="δ of the reported ε (default 1/(10·N))")


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    """Defaults < `base` (a resumed run's settings) < --config file < flags."""
    file_values = _merged(base or {}, load_toml(args.config) if args.config else {})
    overrides = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items() if getattr(args, dest, None) is not None}
    victim = getattr(args, "victim", None)
    if victim is not None and victim.strip().lstrip("-").isdigit():
        overrides["attack.victim"] = int(victim)
    elif victim is not None:  # a client folder name: needs the dataset the file or flags chose
        from mganai.data import resolve_victim

        cfg = build_config(file_values, overrides)
        overrides["attack.victim"] = resolve_victim(cfg.data, victim)
    cfg = build_config(file_values, overrides)
    if has_natural_clients(cfg.data.dataset):  # folder: datasets: the victim against the client folders, no image read
        from mganai.data import check_victim_early

        check_victim_early(cfg.data, cfg.attack.victim)
    return cfg


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top`'s settings over `base`'s, table by table."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse to mix a new run into a directory that already holds something, unless told to."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    try:  # a file made and removed at once: finds read-only disks and directories before hours of work, even as root
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write in {existing} ({exc.strerror or exc})") from None
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        from mganai.checkpoint import FILENAME

        if (out / FILENAME).is_file():
            hint = f"or --resume {out} to continue the interrupted run there"
        elif (out / "metrics.json").is_file():
            hint = "or another --out (a finished run is there)"
        else:
            hint = "or another --out"
        raise ConfigError(f"--out {out} exists and is not empty; pass --overwrite to write over it, {hint}")


SUMMARY_KEYS = (  # the run's table, headed by metrics.json's own names
    "identity_advantage",
    "victim_identity_rate",
    "identity_as_others",
    "class_accuracy",
    "joint_success",
    "data_like_rate",
    "nn_ssim_victim",
    "nn_ssim_others",
    "diversity_ratio",
)


def threat_line(metrics: dict[str, Any]) -> str:
    """The summary's first line: which threat model its numbers belong to."""
    threat = metrics.get("threat_model") or {"name": "updates-only", "public": None}
    if threat.get("public"):
        return f"threat model: {threat['name']} (the server also holds {threat['public']['description']})"
    return f"threat model: {threat['name']} (the server holds no data, only the clients' updates)"


def _summary(metrics: dict[str, Any]) -> str:
    lines = []
    if metrics.get("smoke_run"):
        from mganai.report.tables import SMOKE_RUN

        lines.append(SMOKE_RUN.replace("Warning: smoke run", "SMOKE RUN"))
    lines.append(threat_line(metrics))
    if (metrics.get("defense") or {}).get("name", "none") != "none":
        from mganai.report.tables import defense_label

        lines.append(f"defense: {defense_label(metrics)}")
    lines.append(f"FL test accuracy: {metrics['fl']['test_accuracy']:.3f} after {metrics['fl']['rounds']} rounds")
    if "oracle" in metrics:
        o = metrics["oracle"]
        lines.append(
            f"oracle held-out accuracy: identity {o['heldout_identity_accuracy']:.3f}, "
            f"class {o['heldout_class_accuracy']:.3f} (softened images: "
            f"{o['heldout_softened_identity_accuracy']:.3f}, {o['heldout_softened_class_accuracy']:.3f}); "
            f"data-like {o['heldout_data_like_rate']:.3f} (softened {o['heldout_softened_data_like_rate']:.3f})"
        )
        lines.append(f"{'method':<17}" + "".join(f"{k:>{len(k) + 2}}" for k in SUMMARY_KEYS))
        for name, m in metrics["methods"].items():
            lines.append(f"{name:<17}" + "".join(f"{m[k]:>{len(k) + 2}.3f}" for k in SUMMARY_KEYS))
    if "methods" in metrics:
        from mganai.report.tables import advantage_warnings, realism_warnings

        lines += advantage_warnings(metrics) + realism_warnings(metrics)
    fl = metrics["fl"]
    if fl.get("rejected_updates") or fl.get("dropped_updates"):
        absent = fl.get("victim_absent_rounds", [])
        lines.append(
            f"faulty clients: {fl['rejected_updates']} updates rejected, {fl['dropped_updates']} dropped out; "
            f"victim absent in {len(absent)} of {fl['rounds']} rounds"
        )
    timing = metrics["timing"]
    where = f" on {timing['device']}" if "device" in timing else ""
    lines.append(f"time {timing['total_s']:.1f}s{where}, peak memory {timing['peak_rss_mb']:.0f} MiB")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0 (0: only on SIGINT/SIGTERM), got {args.checkpoint_every}")
    saved = None
    if args.resume is not None:
        cfg, saved = _resumed_config(args)
    else:
        cfg = config_from_args(args)
    from mganai.device import resolve_device

    resolve_device(cfg.device)  # a GPU asked for and missing: say so before anything is written
    if saved is None:
        check_out(Path(cfg.out), args.overwrite)
    from mganai.audit import RunControl, RunInterrupted, run_audit
    from mganai.checkpoint import FILENAME

    out = Path(cfg.out)
    if saved is None:
        (out / FILENAME).unlink(
            missing_ok=True
        )  # --overwrite: a stale checkpoint of an earlier run must not be resumed
    stop = _StopRequest()
    control = RunControl(checkpoint_every=args.checkpoint_every, resume=saved, stop=stop)
    try:
        with stop.installed():
            metrics = run_audit(cfg, out, control=control)
    except RunInterrupted as exc:
        name = signal.Signals(exc.signum).name
        print(
            f"mganai: interrupted by {name} after {exc.where}; checkpoint saved, "
            f"continue with: mganai run --resume {out}",
            file=sys.stderr,
        )
        return 128 + exc.signum
    print(_summary(metrics))
    print(f"wrote {out / 'metrics.json'} and {out / 'report.html'}")
    return 0


def _resumed_config(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The settings of the run to resume (from its checkpoint) and the checkpoint; flags may only repeat them."""
    from mganai.checkpoint import FILENAME, config_difference, corrupt, load
    from mganai.errors import CheckpointError

    out = Path(args.resume)
    if args.out is not None and Path(args.out) != out:
        raise ConfigError(f"--resume {out} and --out {args.out} name different directories; give only --resume")
    path = out / FILENAME
    if not path.is_file() and (out / "metrics.json").is_file():
        raise ConfigError(f"{out}: the run there has finished (metrics.json, no {FILENAME}); nothing to resume")
    if not path.is_file():
        raise ConfigError(f"{path} not found: nothing to resume (was the run started with --out {out}?)")
    saved = load(path)
    stored = saved.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(corrupt(path, "no settings"))
    stored = {k: v for k, v in stored.items() if k not in ("out", "quiet")}
    try:
        original = build_config(stored, {"out": str(out)})
    except ConfigError as exc:
        raise CheckpointError(corrupt(path, exc)) from None
    args.out = str(out)
    cfg = config_from_args(args, base=stored)
    # where and how fast, not what: run_audit checks the checkpoint's device itself; threads change no number
    ignore = ("out", "quiet", "device", "threads")
    diff = config_difference(
        {k: v for k, v in original.to_dict().items() if k not in ignore},
        {k: v for k, v in cfg.to_dict().items() if k not in ignore},
    )
    if diff:
        raise ConfigError(f"--resume {out}: {diff}; resume with the same settings, or start a new run in another --out")
    return cfg, saved


class _StopRequest:
    """SIGINT/SIGTERM set a flag the run checks between rounds (it then saves a checkpoint and stops).

    A second SIGINT leaves at once (KeyboardInterrupt), as Ctrl-C usually does.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> int | None:
        return self.signum

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def installed(self) -> Any:
        import contextlib

        @contextlib.contextmanager
        def scope() -> Any:
            if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
                yield
                return
            old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

        return scope()


def cmd_config(args: argparse.Namespace) -> int:
    from mganai.settings import settings_toml

    print(settings_toml(config_from_args(args)), end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mganai.report import render_report

    print(f"wrote {render_report(args.out)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from mganai.report.compare import text_table, write_comparison

    cmp, path = write_comparison(args.runs, args.out)
    print(text_table(cmp))
    print(f"wrote {path}")
    return 0


def cmd_flower_sim(args: argparse.Namespace) -> int:
    for flag, value in (("--checkpoint-every", args.checkpoint_every), ("--resume", args.resume)):
        if value is not None:
            raise ConfigError(
                f"{flag} is not available in flower-sim: a Flower simulation cannot be stopped and continued at a "
                "round here; use 'mganai run' (same numbers as flower-sim with --engine loop) for long audits"
            )
    cfg = config_from_args(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    from mganai.defenses import DEFENSES

    if DEFENSES[cfg.defense.name].flower is None:
        raise ConfigError(
            f"defense {cfg.defense.name} has no Flower implementation to audit; run it with 'mganai run' "
            f"(Flower path: {', '.join(d.name for d in DEFENSES.values() if d.flower)})"
        )
    from mganai.device import resolve_device

    resolve_device(cfg.device)
    check_out(Path(cfg.out), args.overwrite)
    from mganai.flower import FLOWER_MISSING, flower_available

    if not flower_available():
        raise ConfigError(FLOWER_MISSING)
    from mganai.flower.app import run_flower_simulation

    out = Path(cfg.out)
    try:
        metrics = run_flower_simulation(cfg, workers=args.workers, verbose=args.flower_logs)
    except RuntimeError as exc:  # Flower wraps ServerApp/Ray failures in RuntimeError; its log shows the details
        print(f"mganai: error: the Flower simulation failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Flower's ServerApp thread is not a daemon and would keep the process alive until its
        # round times out; outputs are written atomically, so leaving at once is safe.
        print("mganai: interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    print(_summary(metrics))
    print(f"wrote {out / 'metrics.json'} and {out / 'report.html'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from mganai.audit.sweep import SWEEP_METHODS, parse_vary, plan_sweep

    vary = parse_vary(args.vary)
    if args.methods is None and not (args.config and "methods" in load_toml(args.config).get("attack", {})):
        args.methods = ",".join(SWEEP_METHODS)
    base = config_from_args(args)
    out = Path(base.out)
    planned = plan_sweep(base, vary, out)  # every setting is validated before anything runs
    from mganai.device import resolve_device

    resolve_device(base.device)
    check_out(out, args.overwrite)
    from mganai.audit import run_audit
    from mganai.audit.sweep import run_sweep

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = run_sweep(planned, out, lambda cfg, where: run_audit(cfg, where), say)
    for name, m in results:
        d = m["defense"]
        eps = "-" if d.get("epsilon") is None else f"{d['epsilon']:.3g}"
        scores = " ".join(
            f"{k} advantage {v['identity_advantage']:.3f} joint {v['joint_success']:.3f}"
            for k, v in (m.get("methods") or {}).items()
        )
        print(f"{name:<32} eps {eps:>8}  FL {m['fl']['test_accuracy']:.3f}  {scores}")
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.png'} and {out / 'compare.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "flower-sim":
            return cmd_flower_sim(args)
        if args.command == "config":
            return cmd_config(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "sweep":
            return cmd_sweep(args)
    except MganaiError as exc:  # settings, data, checkpoints, run directories: one line, exit 2
        print(f"mganai: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mganai: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, a directory that vanished: every output is atomic, nothing is half-written
        print(f"mganai: error: cannot write the outputs: {exc}", file=sys.stderr)
        return 1
    return 1  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
