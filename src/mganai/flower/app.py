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
TOML, e.g. `fl.rounds=3` or `defense.name='secagg'`, plus `config-file` for a TOML
file). The defense decides both apps' shape (under secagg, SecAgg+'s workflow and
mod), so the deployment's ClientApp is built per run config (`RunConfigClientApp`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from torch import nn

from mganai.audit import FLRunner, run_audit
from mganai.config import RunConfig, build_config, load_toml
from mganai.data import FederatedDataset
from mganai.data.public import load_federation
from mganai.device import resolve_device
from mganai.fl.model import Params, params_device
from mganai.fl.observers import ModelDispatcher, ServerObserver
from mganai.fl.recipe import local_recipe
from mganai.fl.server import FLResult, accuracy
from mganai.fl.settle import DefenseSteps
from mganai.flower.defenses import client_mods, server_steps, wrap_strategy
from mganai.flower.secagg import check_secagg, secagg_client_app, secagg_fl
from mganai.flower.strategy import (
    CLIENT_KEY,
    AuditStrategy,
    accuracy_fn,
    params_from_record,
    record_from_params,
    seed_node_sampling,
)
from mganai.flower.training import (
    DatasetFn,
    client_device,
    number,
    train_client,
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


def train_reply(cfg: RunConfig, client: int, content: RecordDict, dataset: DatasetFn = cached_dataset) -> RecordDict:
    """One client's training round: the model it was sent -> its trained model, sample count, id."""
    start = params_from_record(content.array_records["arrays"], client_device(cfg))
    ends, n = train_client(cfg, client, start, content.config_records["config"], dataset)
    metrics = MetricRecord({"num-examples": n, CLIENT_KEY: client})
    return RecordDict({"arrays": record_from_params(ends), "metrics": metrics})


def make_client_app(cfg: RunConfig | None = None, dataset: DatasetFn = cached_dataset) -> ClientApp:
    """A ClientApp training on partition `node_config['partition-id']` of our dataset, with `cfg`'s defense.

    Without `cfg` (`flwr run`), a `RunConfigClientApp`: the settings, the defense among them, come from
    Flower's run config. `dataset` loads the federation from the config (per process, so it should cache;
    bench/throughput.py passes a larger, resampled one).
    """
    if cfg is None:
        return RunConfigClientApp(dataset)
    if cfg.defense.name == "secagg":  # SecAgg+ needs a legacy ClientApp
        return secagg_client_app(cfg, dataset)
    # local-dp's default δ is 1/(10·N) for the N clients that train, as in the simulator
    app = ClientApp(mods=client_mods(cfg, dataset(cfg).num_clients) if cfg.defense.name != "none" else [])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        client = int(context.node_config[CLIENT_KEY])
        return Message(content=train_reply(cfg, client, msg.content, dataset), reply_to=msg)

    return app


class RunConfigClientApp(ClientApp):
    """The ClientApp of `flwr run`: each message goes to the ClientApp `make_client_app` builds for the run's config.

    A ClientApp's mods (a DP mod, `secaggplus_mod`) are fixed when it is built, but a deployment's ClientApp is
    built when its module is imported, before Flower hands it a run config (that comes with each message, in
    its `Context`). So this one builds the real ClientApp from the first message's run config, mods included,
    and keeps it per config (a SuperNode may serve several runs).
    """

    def __init__(self, dataset: DatasetFn = cached_dataset):
        super().__init__()
        self.dataset = dataset
        self._apps: dict[str, ClientApp] = {}

    def app_for(self, run_config: dict[str, Any]) -> ClientApp:
        """The ClientApp for one run config (built once)."""
        key = json.dumps(run_config, sort_keys=True, default=str)
        if key not in self._apps:
            self._apps[key] = make_client_app(config_from_run_config(run_config), self.dataset)
        return self._apps[key]

    def __call__(self, message: Message, context: Context) -> Message:
        return self.app_for(dict(context.run_config))(message, context)


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
        seed_node_sampling(cfg.seed)  # every trace samples as the one before it
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
        accs = [number(result.evaluate_metrics_serverapp[r]["accuracy"], float) for r in range(1, cfg.fl.rounds + 1)]
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
        run_fl = secagg_fl(grid, context, ROUND_TIMEOUT_S) if run_cfg.defense.name == "secagg" else flower_fl(grid)
        run_audit(run_cfg, Path(run_cfg.out), run_fl=run_fl, runtime="flower")

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
    num_clients = cached_dataset(cfg).num_clients  # one node per client that trains (and a bad --public fails here)
    if cfg.defense.name == "secagg":
        check_secagg(cfg, num_clients)
    out = Path(cfg.out) / "metrics.json"
    before = out.stat().st_mtime_ns if out.exists() else None
    try:
        with warnings.catch_warnings():
            if not verbose:  # Ray's FutureWarning that it will stop hiding GPUs from actors given none
                warnings.filterwarnings("ignore", message="Tip: In future versions of Ray", category=FutureWarning)
            run_simulation(
                server_app=make_server_app(cfg),
                client_app=make_client_app(cfg),
                num_supernodes=num_clients,
                backend_config=backend,  # type: ignore[arg-type]
                verbose_logging=verbose,
            )
    finally:
        flwr_logger.removeFilter(noise)
    if not out.exists() or out.stat().st_mtime_ns == before:
        raise RuntimeError("the Flower ServerApp finished without writing metrics.json (see Flower's log above)")
    return json.loads(out.read_text())
