"""Every setting of a run as plain dataclasses, loaded from TOML and validated.

A run is described by one `RunConfig`. The TOML file mirrors it: top-level keys
for the run, and one table per section (`[data]`, `[fl]`, `[attack]`, `[eval]`).
Command-line flags override the file. Any problem raises `ConfigError` with one
line that names the key and what is allowed.

Two kinds of setting share a section, kept apart within it: what a user chooses for
an audit (which data, which federation, which victim and methods, how much to
evaluate) comes first; the hyperparameters of the attack's and the oracle's
algorithms follow under their own heading. Those were tuned once (the lab log,
docs/experiments.md) and are settings for research on the attack, not for an audit.
The TOML keys are the field names either way, so a file written for an earlier
version still loads.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mganai.datasets import has_natural_clients, parse, shared_source
from mganai.defenses import ALL_DEFENSES, DEFENSES
from mganai.errors import ConfigError
from mganai.methods import ALL_METHODS, NONE

__all__ = [
    "ALL_METHODS",
    "PRESETS",
    "SECTIONS",
    "AttackConfig",
    "ConfigError",
    "DataConfig",
    "DefenseConfig",
    "EvalConfig",
    "FLConfig",
    "RunConfig",
    "build_config",
    "load_toml",
    "validate",
]


@dataclass
class DataConfig:
    """Which data, how it is split over clients, and how each client's style looks."""

    dataset: str = "digits"  # one of `mganai.datasets.DATASETS` (`mganai run --help` lists them)
    clients: int = 10  # pooled datasets only; folder: and faces bring their own clients
    partition: str = "iid"  # "iid" or "dirichlet"
    dirichlet_alpha: float = 0.5
    resolution: int = 0  # 0: the dataset's default (digits 16); else 16, 28, 32 or 64
    holdout: float = 0.2  # share of each client's data kept for evaluation only
    user_styles: bool = True  # per-client style on pooled datasets (embedded digits always have it)
    max_per_client: int = 200  # cap on each client's samples (not the embedded digits); 0 = no cap
    faces_per_client: int = 4  # faces: people per client (40 people -> 10 clients)
    cache_dir: str = ""  # where downloads go; "" = $MGANAI_DATA or ~/.cache/mganai
    # Threat model `public-data` (default: `updates-only`, the server holds no data): the server also holds images
    # of the same kind from people outside the federation (`mganai.threat`). At most one of the two.
    public: str = ""  # a dataset spec (as `dataset`) whose images, all of them, go to the server; "" = none
    public_clients: int = 0  # or: withhold K clients (the highest-indexed that are not the victim) from FL for it


@dataclass
class FLConfig:
    """FedAvg: who trains, how long, and how the updates are combined."""

    rounds: int = 40  # must be more than attack.start_round when an attack runs
    local_epochs: int = 2
    local_steps: int = 0  # cap on a client's local SGD steps per round (0: every batch of local_epochs epochs)
    batch_size: int = 16
    lr: float = 0.1  # local SGD learning rate of the first round (`lr_schedule` then decays it)
    lr_schedule: str = "cosine"  # "constant" or "cosine": the lr of round t (`mganai.fl.recipe.round_lr`)
    lr_min_ratio: float = 0.05  # cosine: the last rounds approach lr * this
    momentum: float = 0.9  # local SGD momentum, reset every round
    client_fraction: float = 1.0  # share of clients sampled each round
    engine: str = "vmap"  # "vmap" (all clients in one batched computation) or "loop"
    dropout: float = 0.0  # chance that a sampled client never answers a round (simulated faults)
    max_update_norm: float = 1000.0  # an update longer than this (L2, all weights) is rejected as faulty


@dataclass
class AttackConfig:
    """The server-side attack: whom it targets with which methods, then its algorithm's hyperparameters."""

    # What the auditor chooses.
    victim: int = 0  # the client the server attacks (an index; --victim also takes a folder: client's name)
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS))
    start_round: int = 5  # first round whose updates feed the attack

    # Hyperparameters of the method: representatives (update inversion), GAN, schedule, augmentation.
    reps_per_client: int = 20  # update-inversion images per client per round
    inversion_steps: int = 40
    invert_every: int = 3  # invert the updates of every K-th round from start_round on (the bank keeps rep_pool_rounds)
    inversion_lr: float = 0.1
    tv_weight: float = 1e-2
    gan_steps_per_round: int = 25
    gan_final_steps: int = 400  # extra GAN steps on the final shared model
    gan_batch: int = 32
    gan_lr: float = 1e-3
    noise_dim: int = 32
    identity_weight: float = 1.0
    realism_weight: float = 0.1  # weight of the real/fake term (real = representatives: noisy, so light)
    class_weight: float = 4.0  # weight of the category term (the shared model's classifier)
    match_weight: float = 1.0  # weight of the update-matching term of mGAN-AI's generator
    match_batch: int = 10  # generated samples per client in that term
    match_clients: int = 5  # clients in that term per step: the victim and random others (0: all); bounds its cost
    rep_pool_rounds: int = 10  # rounds of representatives the discriminator keeps
    jitter: int = 1  # random shift (pixels) of every image before any judge sees it
    augment_rotate: float = 10.0  # and a random turn of up to this many degrees
    augment_scale: float = 0.1  # and a random zoom by a factor in [1 - this, 1 + this]
    class_ensemble: bool = True  # class term also on the clients' local models of a kept round
    ensemble_size: int = 2  # local models asked per generator step, drawn at random (0: every client's)
    isolation_rebase_every: int = 5  # active: the victim's private model restarts from the shared one every K rounds
    smooth_output: bool = True  # generator draws at half resolution, bilinearly upsampled
    # The public-data threat model (data.public / data.public_clients): the prior and its weights.
    prior_pretrain_steps: int = 2000  # steps of the class-conditional VAE on the public images before the attack
    prior_realism_weight: float = 1.0  # the critic's term (public images are real)
    prior_class_weight: float = 1.0  # the category term (the public prior already draws the classes)
    prior_match_weight: float = 5.0  # update matching: what moves the prior's samples to a client's style


@dataclass
class EvalConfig:
    """How many samples each method is judged on, how often it is scored during FL, and the oracle's training."""

    samples_per_class: int = 20
    # Hyperparameters of the oracle.
    oracle_epochs: int = 30
    oracle_seed_offset: int = 1000  # oracle seed = run seed + offset: never the attacker's
    # Attack curves.
    curve_every: int = 5  # score every method every K rounds for OUT/curves.csv (0: no curves)
    curve_samples_per_class: int = 5  # size of that small fixed request, per class


@dataclass
class DefenseConfig:
    """What stands between the clients' updates and the server (`mganai.defenses`, docs/defenses.md)."""

    name: str = "none"  # none, central-dp, client-dp, local-dp, secagg, shuffle
    dp_noise: float = 1.0  # noise multiplier σ: Gaussian noise of standard deviation σ·C (DP defenses only)
    dp_clip: float = 1.0  # clipping norm C: every update is scaled down to an L2 norm (all weights) of at most C
    dp_delta: float | None = None  # δ of the reported ε; unset: 1/(10·N) for N clients


@dataclass
class RunConfig:
    """One audit: data, FL, attack and evaluation settings plus run-level options."""

    seed: int = 0  # seed for everything: the same settings and seed give the same numbers
    device: str = "auto"  # where to compute: auto (cuda when torch sees a GPU, else cpu), cpu, cuda or cuda:N
    out: str = "runs/default"  # output directory
    quiet: bool = False  # no progress lines, only the summary
    threads: int = 0  # CPU cores the run computes on at once, one thread each (0: every core it may use)
    preset: str = ""  # "quick": a smoke run of every stage in seconds (`PRESETS`); its numbers mean nothing
    data: DataConfig = field(default_factory=DataConfig)
    fl: FLConfig = field(default_factory=FLConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    defense: DefenseConfig = field(default_factory=DefenseConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for metrics.json."""
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "fl": FLConfig,
    "attack": AttackConfig,
    "eval": EvalConfig,
    "defense": DefenseConfig,
}

# Settings a preset puts over the defaults (then the TOML file and the flags override it). "quick" runs every
# stage (data, oracle, both FL traces with every method, curves, evaluation, report) on tiny budgets: a smoke
# run that shows the tool works, labelled as such in metrics.json, the summary and the report.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": {"clients": 4},
        "fl": {"rounds": 6, "local_epochs": 1},
        "attack": {
            "start_round": 2,
            "reps_per_client": 8,
            "inversion_steps": 10,
            "invert_every": 2,
            "gan_steps_per_round": 5,
            "gan_final_steps": 40,
            "gan_batch": 16,
            "prior_pretrain_steps": 40,
        },
        "eval": {"samples_per_class": 8, "oracle_epochs": 3, "curve_every": 2, "curve_samples_per_class": 2},
    },
}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a dataclass field annotation (as a string) and convert ints to floats."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if kind == "float | None" and value is None:  # only a default (or a stored config): TOML has no null
        return None
    if kind in ("float", "float | None"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):  # TOML allows nan and inf; no setting means anything with them
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if kind.startswith("list"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported setting type {kind}")  # pragma: no cover - programming error


def _apply(obj: Any, values: dict[str, Any], prefix: str) -> None:
    """Set dataclass fields from a dict, refusing unknown keys and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if not prefix and key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"'{key}' must be a table of settings ([{key}]), got {value!r}")
            _apply(getattr(obj, key), value, f"{key}.")
        elif key in fields:
            setattr(obj, key, _coerce(name, value, fields[key].type))
        else:
            allowed = ", ".join(sorted(fields))
            raise ConfigError(f"unknown setting '{name}' (allowed: {allowed})")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; a missing or malformed file is a ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {str(exc).splitlines()[0]}") from None


def build_config(file_values: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults, then a preset's values, then the TOML file's, then flag overrides (dotted keys), validated."""
    cfg = RunConfig()
    preset = (overrides or {}).get("preset", (file_values or {}).get("preset", ""))
    if preset:
        _check(
            isinstance(preset, str) and preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, got {preset!r}"
        )
        _apply(cfg, PRESETS[preset], "")
    _apply(cfg, file_values or {}, "")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        target = getattr(cfg, section) if section else cfg
        _apply(target, {key: value}, f"{section}." if section else "")
    validate(cfg)
    return cfg


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: RunConfig) -> None:
    """Range and consistency checks; every message names the setting and the allowed values."""
    _check(0 <= cfg.seed < 2**31, f"seed must be in 0..{2**31 - 1}, got {cfg.seed}")
    _check(
        re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.device) is not None,
        f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}",
    )
    _check(cfg.threads >= 0, f"threads must be >= 0 (0: every core), got {cfg.threads}")
    _check(cfg.preset in ("", *PRESETS), f"preset must be one of {', '.join(PRESETS)}, got {cfg.preset!r}")
    _validate_data(cfg.data)
    _validate_fl(cfg.fl)
    _validate_attack(cfg.attack, cfg.data)
    _validate_eval(cfg.eval)
    _validate_defense(cfg.defense, cfg.attack)
    _check(
        cfg.attack.methods == [NONE] or cfg.fl.rounds > cfg.attack.start_round,
        f"fl.rounds ({cfg.fl.rounds}) must be more than attack.start_round ({cfg.attack.start_round}): the attack "
        f"learns only from round {cfg.attack.start_round + 1} on, so this run would score it on nothing; "
        f"use at least {cfg.attack.start_round + 1} rounds, or attack.methods = none for FL only",
    )


def _validate_data(d: DataConfig) -> None:
    _check(d.clients >= 2, f"data.clients must be at least 2, got {d.clients}")
    _check(d.partition in ("iid", "dirichlet"), f"data.partition must be 'iid' or 'dirichlet', got {d.partition!r}")
    _check(d.dirichlet_alpha > 0, f"data.dirichlet_alpha must be > 0, got {d.dirichlet_alpha}")
    _check(
        d.resolution in (0, 16, 28, 32, 64),
        f"data.resolution must be one of 16, 28, 32, 64 (0: the dataset's default), got {d.resolution}",
    )
    _check(d.max_per_client >= 0, f"data.max_per_client must be >= 0 (0: no cap), got {d.max_per_client}")
    _check(d.faces_per_client >= 1, f"data.faces_per_client must be at least 1, got {d.faces_per_client}")
    _check(0.0 < d.holdout < 0.9, f"data.holdout must be in (0, 0.9), got {d.holdout}")
    _validate_public(d)


def _validate_public(d: DataConfig) -> None:
    """The public-data threat model: one source of public data, never the federation's own."""
    _check(d.public_clients >= 0, f"data.public_clients must be >= 0 (0: none), got {d.public_clients}")
    _check(
        not (d.public and d.public_clients),
        f"data.public ({d.public!r}) and data.public_clients ({d.public_clients}) exclude each other: "
        "the server's public data comes from another dataset or from withheld clients, not both",
    )
    if d.public:
        try:
            parse(d.public)
        except ConfigError as exc:
            raise ConfigError(f"data.public: {exc}") from None
        try:
            overlap = shared_source(d.public, d.dataset)
        except ConfigError:
            overlap = None  # an unknown data.dataset is refused when the data is loaded
        _check(
            overlap is None,
            f"data.public {d.public!r} may hold the federation's own images ({overlap}; data.dataset is "
            f"{d.dataset!r}): public data comes from people outside the federation; use --public-clients K to "
            "withhold clients of the same dataset",
        )
    if d.public_clients and not has_natural_clients(d.dataset):  # natural clients are counted when the data is read
        _check(
            d.public_clients <= d.clients - 2,
            f"data.public_clients must be at most clients - 2 = {d.clients - 2} (at least two clients stay in the "
            f"federation; clients={d.clients}), got {d.public_clients}",
        )


def _validate_fl(f: FLConfig) -> None:
    _check(f.rounds >= 1, f"fl.rounds must be at least 1, got {f.rounds}")
    _check(f.local_epochs >= 1, f"fl.local_epochs must be at least 1, got {f.local_epochs}")
    _check(f.local_steps >= 0, f"fl.local_steps must be >= 0 (0: whole epochs), got {f.local_steps}")
    _check(f.batch_size >= 1, f"fl.batch_size must be at least 1, got {f.batch_size}")
    _check(f.lr > 0, f"fl.lr must be > 0, got {f.lr}")
    _check(
        f.lr_schedule in ("constant", "cosine"),
        f"fl.lr_schedule must be 'constant' or 'cosine', got {f.lr_schedule!r}",
    )
    _check(0.0 <= f.lr_min_ratio <= 1.0, f"fl.lr_min_ratio must be in [0, 1], got {f.lr_min_ratio}")
    _check(0.0 <= f.momentum < 1.0, f"fl.momentum must be in [0, 1), got {f.momentum}")
    _check(0.0 < f.client_fraction <= 1.0, f"fl.client_fraction must be in (0, 1], got {f.client_fraction}")
    _check(f.engine in ("vmap", "loop"), f"fl.engine must be 'vmap' or 'loop', got {f.engine!r}")
    _check(0.0 <= f.dropout < 1.0, f"fl.dropout must be in [0, 1), got {f.dropout}")
    _check(f.max_update_norm > 0, f"fl.max_update_norm must be > 0, got {f.max_update_norm}")


def _validate_attack(a: AttackConfig, d: DataConfig) -> None:
    if has_natural_clients(d.dataset):  # the client count is known once the data is read (mganai.data.check_victim)
        _check(a.victim >= 0, f"attack.victim must be >= 0, got {a.victim}")
    else:
        _check(
            0 <= a.victim < d.clients,
            f"attack.victim must be in 0..{d.clients - 1} (clients={d.clients}), got {a.victim}",
        )
    allowed = f"allowed: {NONE}, {', '.join(ALL_METHODS)}"
    unknown = [m for m in a.methods if m not in (*ALL_METHODS, NONE)]
    _check(not unknown, f"attack.methods: unknown method {', '.join(unknown)!r} ({allowed})")
    _check(bool(a.methods), f"attack.methods must name at least one method ({allowed})")
    _check(
        NONE not in a.methods or a.methods == [NONE], f"attack.methods: '{NONE}' cannot be combined with other methods"
    )
    for name in ("reps_per_client", "inversion_steps", "gan_batch", "noise_dim", "rep_pool_rounds", "match_batch"):
        _check(getattr(a, name) >= 1, f"attack.{name} must be at least 1, got {getattr(a, name)}")
    _check(a.match_clients >= 0, f"attack.match_clients must be >= 0 (0: all clients), got {a.match_clients}")
    _check(a.isolation_rebase_every >= 0, f"attack.isolation_rebase_every must be >= 0, got {a.isolation_rebase_every}")
    _check(a.invert_every >= 1, f"attack.invert_every must be at least 1, got {a.invert_every}")
    _check(
        a.ensemble_size >= 0,
        f"attack.ensemble_size must be >= 0 (0: every client's local model), got {a.ensemble_size}",
    )
    for name in ("gan_steps_per_round", "gan_final_steps", "start_round", "jitter", "prior_pretrain_steps"):
        _check(getattr(a, name) >= 0, f"attack.{name} must be >= 0, got {getattr(a, name)}")
    for name in ("inversion_lr", "gan_lr"):
        _check(getattr(a, name) > 0, f"attack.{name} must be > 0, got {getattr(a, name)}")
    _check(0 <= a.augment_rotate <= 90, f"attack.augment_rotate must be in [0, 90] degrees, got {a.augment_rotate}")
    _check(0 <= a.augment_scale < 1, f"attack.augment_scale must be in [0, 1), got {a.augment_scale}")
    for name in (
        "tv_weight", "identity_weight", "match_weight", "realism_weight", "class_weight",
        "prior_realism_weight", "prior_class_weight", "prior_match_weight",
    ):  # fmt: skip
        _check(getattr(a, name) >= 0, f"attack.{name} must be >= 0, got {getattr(a, name)}")


def _validate_eval(e: EvalConfig) -> None:
    _check(e.samples_per_class >= 1, f"eval.samples_per_class must be at least 1, got {e.samples_per_class}")
    _check(e.oracle_epochs >= 1, f"eval.oracle_epochs must be at least 1, got {e.oracle_epochs}")
    _check(e.curve_every >= 0, f"eval.curve_every must be >= 0 (0: no curves), got {e.curve_every}")
    _check(
        1 <= e.oracle_seed_offset < 2**31,
        f"eval.oracle_seed_offset must be in 1..{2**31 - 1} (the oracle's seed is never the run's), "
        f"got {e.oracle_seed_offset}",
    )
    _check(
        e.curve_samples_per_class >= 1,
        f"eval.curve_samples_per_class must be at least 1, got {e.curve_samples_per_class}",
    )


def _validate_defense(d: DefenseConfig, a: AttackConfig) -> None:
    _check(d.name in DEFENSES, f"defense.name: unknown defense {d.name!r} (allowed: {', '.join(ALL_DEFENSES)})")
    _check(d.dp_noise >= 0, f"defense.dp_noise (--dp-noise) must be >= 0, got {d.dp_noise}")
    _check(d.dp_clip > 0, f"defense.dp_clip (--dp-clip) must be > 0, got {d.dp_clip}")
    _check(
        d.dp_delta is None or 0 < d.dp_delta < 1, f"defense.dp_delta (--dp-delta) must be in (0, 1), got {d.dp_delta}"
    )
    spec = DEFENSES[d.name]
    if not (spec.individual_updates and spec.client_ids):
        from mganai.methods import active_methods

        active = active_methods([m for m in a.methods if m != NONE])
        _check(
            not active,
            f"attack.methods: {', '.join(active)} cannot run under defense {d.name}: isolating the victim needs "
            f"the victim's own update by id, and the server sees {spec.server_sees}; use the passive methods",
        )
