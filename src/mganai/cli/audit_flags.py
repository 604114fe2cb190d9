"""The settings flags shared by `run`, `flower-sim`, `config` and `sweep`, one function per topic.

The order of the calls is the order `--help` lists the flags in.
"""

from __future__ import annotations

import argparse

from mganai.datasets import DATASETS, dataset_help
from mganai.methods import ALL_METHODS, NONE


def add_audit_flags(run: argparse.ArgumentParser, engine: bool = True) -> None:
    """Every settings flag; `flower-sim` passes engine=False (its clients always train with the loop engine)."""
    run.add_argument("--config", metavar="FILE", help="TOML file with settings (flags override it)")
    run.add_argument(
        "--quick",
        dest="preset",
        action="store_const",
        const="quick",
        help="a smoke run: every stage on tiny budgets in under 30 s on 2 cores (4 clients, 6 rounds); its "
        "numbers only show that the tool works (its settings: `mganai config --quick`)",
    )
    _add_data_flags(run)
    _add_threat_flags(run)
    _add_fl_flags(run, engine)
    _add_attack_and_output_flags(run)
    _add_fault_flags(run)
    _add_defense_flags(run)


def _add_data_flags(run: argparse.ArgumentParser) -> None:
    """Which dataset, how it is split over clients, at which resolution."""
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


def _add_threat_flags(run: argparse.ArgumentParser) -> None:
    """What the server holds besides the updates, and whom it attacks."""
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


def _add_fl_flags(run: argparse.ArgumentParser, engine: bool) -> None:
    """The FedAvg schedule and, unless the caller fixes it, the client training engine."""
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


def _add_attack_and_output_flags(run: argparse.ArgumentParser) -> None:
    """Which attack methods, the seed, where to compute and where and how loudly to write."""
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


def _add_fault_flags(run: argparse.ArgumentParser) -> None:
    """Simulated client faults and the server's guard against faulty updates."""
    run.add_argument(
        "--dropout", type=float, help="chance a sampled client never answers a round (simulated faults; default 0)"
    )
    run.add_argument(
        "--max-update-norm",
        type=float,
        help="reject a client update longer than this (L2 over all weights) as faulty (default 1000)",
    )


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
