"""The Flower app of an audit: a ServerApp that runs `run_audit` on Flower, a ClientApp that trains like our simulator.

ServerApp: the audit of `mganai run` (same attack set-up, oracle, metrics.json and
images), with FL run by Flower through `AuditStrategy` instead of our simulator.
ClientApp: one client's local training with the simulator's own code (`make_plan`
+ `train_loop` with the simulator's per-(seed, round, client) generator) and the
round's learning rate, momentum, epochs, batch size and step cap the server sent, so a
client's update is the same as in `mganai run --engine loop`. It reports its
partition id so the server can tell clients apart.

Settings: `make_server_app(cfg)` / `make_client_app(cfg)` bake a `RunConfig` in
(`mganai flower-sim`); the module-level `server_app` / `client_app` read it from
Flower's run config instead (`flwr run` on a deployment: dotted keys as in our
TOML, e.g. `fl.rounds=3`, plus `config-file` for a TOML file).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from torch import nn

from mganai.audit import FLRunner, run_audit
from mganai.config import RunConfig, build_config, load_toml
from mganai.data import FederatedDataset
from mganai.data.public import load_federation
from mganai.device import resolve_device, set_determinism
from mganai.fl.client import client_generator, make_plan, train_loop
from mganai.fl.model import Params, SharedCNN, params_device
from mganai.fl.observers import ModelDispatcher, ServerObserver
from mganai.fl.recipe import LocalRecipe, local_recipe
from mganai.fl.server import FLResult, accuracy
from mganai.fl.settle import DefenseSteps
from mganai.flower.defenses import client_mods, server_steps, wrap_strategy
from mganai.flower.strategy import (
    CLIENT_KEY,
    RECIPE_KEYS,
    AuditStrategy,
    accuracy_fn,
    params_from_record,
    record_from_params,
)

ROUND_TIMEOUT_S = 600.0  # longest wait for a round's replies


def config_from_run_config(run_config: dict[str, Any]) -> RunConfig:
    """A RunConfig from Flower's run config: defaults, then `config-file` (TOML), then the dotted keys.

    A key whose value is "" is unset (Flower only accepts overrides of keys its app
    config lists, so the example app lists them all as "" to leave the file and
    mganai's defaults in charge).
    """
    values = {k: v for k, v in run_config.items() if v != ""}
    path = str(values.pop("config-file", ""))
    return build_config(load_toml(path) if path else {}, values)


_DATA: dict[str, FederatedDataset] = {}


def cached_dataset(cfg: RunConfig) -> FederatedDataset:
    """The clients that train (withheld public clients left out), built once per process (a ClientApp process
    serves many rounds)."""
    key = json.dumps([asdict(cfg.data), cfg.attack.victim, cfg.seed], sort_keys=True)
    if key not in _DATA:
        _DATA[key] = load_federation(cfg.data, cfg.attack.victim, cfg.seed).data
    return _DATA[key]


DatasetFn = Callable[[RunConfig], FederatedDataset]
N = TypeVar("N", int, float)


def _number(value: object, kind: type[N]) -> N:
    """A number from a Flower record (whose values may also be lists, strings or bytes)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number in a Flower record, got {value!r}")
    return kind(value)


def recipe_from_config(config: Any) -> LocalRecipe | None:
    """The local training recipe a round's config carries (`RECIPE_KEYS`), or None when the server sent none."""
    if not all(key in config for key in RECIPE_KEYS.values()):
        return None
    v = {field: config[key] for field, key in RECIPE_KEYS.items()}
    return LocalRecipe(
        _number(v["lr"], float),
        _number(v["momentum"], float),
        _number(v["local_epochs"], int),
        _number(v["batch_size"], int),
        _number(v["local_steps"], int),
    )


def train_reply(cfg: RunConfig, client: int, content: RecordDict, dataset: DatasetFn = cached_dataset) -> RecordDict:
    """One client's training round: the model it was sent -> its trained model, sample count, id."""
    data = dataset(cfg)
    if not 0 <= client < data.num_clients:
        raise ValueError(
            f"partition-id {client} is outside 0..{data.num_clients - 1} (data.clients={data.num_clients})"
        )
    # The client's own machine: its GPU when it has one (one the server's --device names may not exist
    # here, and Ray shows a simulated client only the GPU share it was given), unless told to use the CPU.
    device = resolve_device("cpu" if cfg.device == "cpu" else "auto")
    set_determinism(device)
    own = data.clients[client]
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1]).to(device)
    start = params_from_record(content.array_records["arrays"], device)
    config = content.config_records["config"]
    t = _number(config["server-round"], int) - 1
    # The recipe the server sent; a server that sends none gets the one our settings give for this round.
    recipe = recipe_from_config(config) or local_recipe(cfg.fl, t)
    gen = client_generator(cfg.seed, t, client)
    plan = make_plan([len(own.y_train)], recipe.batch_size, recipe.local_epochs, [gen], recipe.local_steps)
    stacked = {n: v.unsqueeze(0) for n, v in start.items()}
    x, y = own.x_train.to(device), own.y_train.to(device)
    ends = train_loop(model, stacked, [x], [y], plan, recipe.lr, recipe.momentum)
    metrics = MetricRecord({"num-examples": len(own.y_train), CLIENT_KEY: client})
    return RecordDict({"arrays": record_from_params({n: v[0] for n, v in ends.items()}), "metrics": metrics})


def make_client_app(cfg: RunConfig | None = None, dataset: DatasetFn = cached_dataset) -> ClientApp:
    """A ClientApp training on partition `node_config['partition-id']` of our dataset.

    `dataset` loads the federation from the config (per process, so it should cache;
    bench/throughput.py passes a larger, resampled one).
    """
    # local-dp's default δ is 1/(10·N) for the N clients that train, as in the simulator
    app = ClientApp(mods=client_mods(cfg, dataset(cfg).num_clients) if cfg and cfg.defense.name != "none" else [])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        run_cfg = cfg or config_from_run_config(dict(context.run_config))
        client = int(context.node_config[CLIENT_KEY])
        return Message(content=train_reply(run_cfg, client, msg.content, dataset), reply_to=msg)

    return app


def flower_fl(grid: Grid, timeout: float = ROUND_TIMEOUT_S) -> FLRunner:
    """An `FLRunner` for `run_audit`: FedAvg on Flower's grid through `AuditStrategy`.

    The node -> client map learnt in one trace carries over to the next (the active
    trace then knows the victim's node from its first round).
    """
    known: dict[int, int] = {}

    def run(
        model: nn.Module,
        init: Params,
        data: FederatedDataset,
        cfg: RunConfig,
        observers: list[ServerObserver],
        dispatcher: ModelDispatcher | None,
        on_round: Callable[[int, float], None],
        defense: DefenseSteps,  # the simulator's steps: Flower runs its own components (`flower.defenses`)
    ) -> FLResult:
        device = params_device(init)  # where run_audit put the model: the attack computes there
        x_test, y_test = (t.to(device) for t in data.heldout()[:2])
        n = data.num_clients
        audit = AuditStrategy(
            observers,
            dispatcher,
            node_to_client=known,
            max_update_norm=cfg.fl.max_update_norm,
            defense=server_steps(cfg),
            fraction_train=cfg.fl.client_fraction,
            fraction_evaluate=0.0,  # the server scores the shared model on held-out data itself
            min_train_nodes=max(1, round(cfg.fl.client_fraction * n)),
            min_available_nodes=n,  # start once every client's node is connected
            device=device,
            recipe=lambda t: local_recipe(cfg.fl, t),
            dropout=cfg.fl.dropout,
            num_clients=n,
            seed=cfg.seed,
        )
        sampled = max(1, round(cfg.fl.client_fraction * n))
        result = wrap_strategy(cfg, audit, sampled).start(
            grid,
            record_from_params(init),
            num_rounds=cfg.fl.rounds,
            timeout=timeout,
            evaluate_fn=accuracy_fn(lambda p: accuracy(model, p, x_test, y_test), on_round, device),
        )
        known.update(audit.node_to_client)
        final = params_from_record(result.arrays, device) if len(result.arrays) else dict(init)
        accs = [_number(result.evaluate_metrics_serverapp[r]["accuracy"], float) for r in range(1, cfg.fl.rounds + 1)]
        return FLResult(
            final_params=final,
            test_accuracy=accs,
            participants=audit.participants,
            rejected=audit.rejected,
            dropped=audit.dropped,
        )

    return run


def make_server_app(cfg: RunConfig | None = None) -> ServerApp:
    """A ServerApp that runs the whole audit (FL on Flower, attack, oracle, outputs to `cfg.out`)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_cfg = copy.deepcopy(cfg) if cfg else config_from_run_config(dict(context.run_config))
        run_cfg.fl.engine = "loop"  # what the ClientApps run (one client each), so metrics.json says so
        run_audit(run_cfg, Path(run_cfg.out), run_fl=flower_fl(grid), runtime="flower")

    return app


# For `flwr run` (examples/flower/pyproject.toml): settings come from Flower's run config.
server_app = make_server_app()
client_app = make_client_app()


class _KnownNoise(logging.Filter):
    """Flower's warnings about choices flower-sim makes on purpose, which a user can do nothing about."""

    NOISE = (
        "`run_simulation` function is deprecated",  # flower-sim is a one-command simulation; `flwr run` is not
        "fraction_evaluate is set to 0.0",  # the server scores the shared model on held-out data itself
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in self.NOISE)


def run_flower_simulation(cfg: RunConfig, workers: int = 2, verbose: bool = False) -> dict[str, Any]:
    """`mganai flower-sim`: the audit in Flower's simulation engine (Ray), one virtual node per client.

    `workers` ClientApps run at once (Ray actors of one CPU each, one torch thread each, as the ServerApp's
    computations: the numbers are those of `mganai run --engine loop`). Returns the metrics the ServerApp
    wrote to `cfg.out`/metrics.json. Without `verbose`, Flower logs warnings only, less the two about
    flower-sim's own choices, and Ray's tip about GPU variables (it changes nothing here) is not shown.
    """
    import warnings

    from flwr.simulation import run_simulation

    flwr_logger = logging.getLogger("flwr")
    noise = _KnownNoise()
    if not verbose:
        flwr_logger.setLevel(logging.WARNING)
        flwr_logger.addFilter(noise)
    # Ray hides GPUs from an actor given none: on a GPU run the clients share the server's GPU.
    gpu_share = 1.0 / workers if resolve_device(cfg.device).type == "cuda" else 0.0
    backend = {
        # Ray on loopback only (it would bind the machine's address), no dashboard
        "init_args": {
            "num_cpus": workers,
            "include_dashboard": False,
            "_node_ip_address": "127.0.0.1",
            # --quiet: the ClientApps' own output (Flower's notes as Ray stops them) stays in Ray's logs;
            # a client that fails still fails the round on the server. Without it the lines are forwarded.
            "log_to_driver": not cfg.quiet or verbose,
        },
        "client_resources": {"num_cpus": 1.0, "num_gpus": gpu_share},
    }
    out = Path(cfg.out) / "metrics.json"
    before = out.stat().st_mtime_ns if out.exists() else None
    try:
        with warnings.catch_warnings():
            if not verbose:  # Ray's FutureWarning that it will stop hiding GPUs from actors given none
                warnings.filterwarnings("ignore", message="Tip: In future versions of Ray", category=FutureWarning)
            run_simulation(
                server_app=make_server_app(cfg),
                client_app=make_client_app(cfg),
                num_supernodes=cached_dataset(
                    cfg
                ).num_clients,  # one per client that trains (and a bad --public fails here)
                backend_config=backend,  # type: ignore[arg-type]
                verbose_logging=verbose,
            )
    finally:
        flwr_logger.removeFilter(noise)
    if not out.exists() or out.stat().st_mtime_ns == before:
        raise RuntimeError("the Flower ServerApp finished without writing metrics.json (see Flower's log above)")
    return json.loads(out.read_text())
