"""Secure aggregation in the Flower path: Flower's SecAgg+ (`SecAggPlusWorkflow` + `secaggplus_mod`).

In flwr 1.42 SecAgg+ exists only for the legacy API: the ServerApp runs
`DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(...))` on a `LegacyContext` holding
a legacy strategy (`flwr.server.strategy.FedAvg`, fit/evaluate), and each ClientApp
is a legacy one (a `NumPyClient`) behind `secaggplus_mod`. The mod trains, then
sends only its masked, quantised vector; the server unmasks the sum and hands every
`FitRes` the same aggregate, so the strategy never holds an individual update.

What the clients submit: their *update* (returned model minus the model sent), not
their model, so values are small. SecAgg+ turns it into a sample-weighted mean:
client k multiplies its vector by w_k = round(n_k / max_weight · Q) / Q, quantises it
stochastically to Q levels over [-c, c], the server dequantises the sum and divides
by Σ w_k. With max_weight = the largest client's sample count every w_k is n_k/max
up to 1/Q, so the result is FedAvg's sample-weighted mean of the updates, up to the
quantisation step 2c/Q per client (`quantisation_bound`). Settings
(`secaggplus_settings`):

- c = `fl.max_update_norm`: every update the server would accept has no coordinate
  longer than its L2 norm, so nothing is ever clipped; a client screens its own update
  (non-finite or longer than the bound: it sends zeros with weight 0 and says why in
  its metrics, the simulator's rejection, done where only the client can do it);
- Q = the largest power of two ≤ 2^30 with K·Q < 2^32 for K clients per round (the
  masked sum lives modulo 2^32 and must not wrap; Flower's default is 2^22);
- every sampled client is every other's neighbour (`num_shares=1.0`), any half of the
  shares reconstruct a key.

The strategy settles each round with the simulator's `settle_round` and the
simulator's `DefenseSteps` for secagg, on one pseudo-client `AGGREGATE` whose update is
the unmasked mean: the observers get exactly what the simulator's secagg shows them,
and the screening sees only what the server holds (the aggregate).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from flwr.app import Context
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import FitRes, Parameters, Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import LegacyContext, ServerConfig
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid
from torch import nn

from mganai.audit import FLRunner
from mganai.config import RunConfig
from mganai.data import FederatedDataset
from mganai.errors import ConfigError
from mganai.fl.defenses import AGGREGATE
from mganai.fl.faults import screen_updates
from mganai.fl.model import Params, SharedCNN, params_device
from mganai.fl.observers import ModelDispatcher, ServerObserver
from mganai.fl.recipe import LocalRecipe, local_recipe
from mganai.fl.server import FLResult, accuracy, warn
from mganai.fl.settle import DefenseSteps, RoundUpdates, rejection_message, settle_round
from mganai.flower.defenses import seeded_numpy_mod
from mganai.flower.strategy import CLIENT_KEY, seed_node_sampling
from mganai.flower.training import RECIPE_KEYS, DatasetFn, client_device, train_client

MODULUS = 2**32  # SecAgg+'s modulus (Flower's default and its largest)
MAX_QUANTISATION = 2**30  # Flower quantises into int32
REJECTED_KEY = "rejected"  # a client's own screening verdict, in its FitRes metrics


def quantisation_range(clients_per_round: int) -> int:
    """Q: the largest power of two ≤ 2^30 such that the sum of K quantised vectors (each ≤ Q) stays below 2^32."""
    return min(MAX_QUANTISATION, 2 ** math.floor(math.log2((MODULUS - 1) / max(clients_per_round, 1))))


def check_secagg(cfg: RunConfig, num_clients: int) -> None:
    """Refuse, in one line, what SecAgg+ in flower-sim cannot do (before anything is written)."""
    sampled = max(1, round(cfg.fl.client_fraction * num_clients))
    if sampled < 2:
        raise ConfigError(
            f"--defense secagg needs at least 2 clients per round (SecAgg+ sums over several), got {sampled}"
        )
    if cfg.fl.dropout > 0:
        raise ConfigError(
            "fl.dropout is not available with --defense secagg in flower-sim: SecAgg+ sums every reply it unmasks, "
            "so the server cannot discard one afterwards as the simulated dropout does; use 'mganai run'"
        )
    if not math.isfinite(cfg.fl.max_update_norm):
        raise ConfigError("--defense secagg in flower-sim needs a finite fl.max_update_norm: SecAgg+ quantises in it")


def secaggplus_settings(max_update_norm: float, clients_per_round: int, max_samples: int) -> dict[str, Any]:
    """`SecAggPlusWorkflow`'s keyword arguments for a federation (see the module's docstring)."""
    return {
        "num_shares": 1.0,
        "reconstruction_threshold": 0.5,
        "max_weight": float(max_samples),
        "clipping_range": float(max_update_norm),
        "quantization_range": quantisation_range(clients_per_round),
        "modulus_range": MODULUS,
    }


def quantisation_bound(num_samples: Sequence[float], clipping_range: float, q: int) -> float:
    """The largest per-coordinate difference between SecAgg+'s mean and FedAvg's sample-weighted mean.

    Each client's scaled value is rounded to a step 2c/Q (error < one step); the sum is
    divided by Σ w_k with w_k = n_k/max n. The weights' own rounding (1/Q) adds a
    relative error of about K/(Q·min w), counted as one more step.
    """
    top = max(num_samples)
    total_weight = sum(n / top for n in num_samples)
    return (len(num_samples) + 1) * (2 * clipping_range / q) / total_weight


class SecAggClient(NumPyClient):
    """A legacy client: trains like our simulator, submits its update (screened by itself) to SecAgg+."""

    def __init__(self, cfg: RunConfig, client: int, dataset: DatasetFn):
        self.cfg, self.client, self.dataset = cfg, client, dataset

    def fit(self, parameters: list[np.ndarray], config: dict[str, Scalar]) -> tuple[list[np.ndarray], int, dict]:
        device = client_device(self.cfg)
        names = list(_model(self.dataset(self.cfg)).state_dict())
        start = {n: torch.from_numpy(np.asarray(a, dtype=np.float32)).to(device) for n, a in zip(names, parameters)}
        ends, n = train_client(self.cfg, self.client, start, config, self.dataset)
        update = {k: (ends[k] - start[k]).unsqueeze(0) for k in names}
        t = int(config["server-round"]) - 1
        bad = screen_updates(update, [self.client], t, self.cfg.fl.max_update_norm)
        metrics: dict[str, Scalar] = {CLIENT_KEY: self.client}
        if bad:  # out of the sum: zeros, weight 0 (SecAgg+ adds exactly nothing for them)
            metrics[REJECTED_KEY] = bad[0]["reason"]
            return [np.zeros_like(np.asarray(a)) for a in parameters], 0, metrics
        # float64: SecAgg+ shifts by c and scales to Q levels in the arrays' own dtype; in float32 that alone
        # would cost c·6e-8 per coordinate (6e-5 at c = 1000), far above the quantisation step
        return [update[k][0].cpu().double().numpy() for k in names], n, metrics


def _model(data: FederatedDataset) -> nn.Module:
    shape = data.image_shape
    return SharedCNN(shape[0], data.num_classes, shape[1])


def secagg_client_app(cfg: RunConfig, dataset: DatasetFn) -> ClientApp:
    """The legacy ClientApp for `--defense secagg`: `secaggplus_mod` around a `SecAggClient`.

    NumPy's global generator (SecAgg+'s stochastic rounding) is reseeded per (seed, round, client) first, so a
    run's aggregate repeats itself."""

    def client_fn(context: Context) -> Any:
        return SecAggClient(cfg, int(context.node_config[CLIENT_KEY]), dataset).to_client()

    return ClientApp(client_fn=client_fn, mods=[seeded_numpy_mod(cfg.seed), secaggplus_mod])


class SecAggAuditStrategy(FedAvg):
    """Legacy FedAvg for SecAgg+: sends each round's recipe, and settles the unmasked aggregate like the simulator.

    `aggregate_fit` receives every client's `FitRes` carrying the same aggregate (the
    mean update), plus each client's sample count and metrics (the server sees who
    took part, and how many samples each reports, in clear). `defense` is the
    simulator's `DefenseSteps` for secagg: the observers get the one pseudo-client
    `AGGREGATE`.
    """

    def __init__(
        self,
        observers: Sequence[ServerObserver],
        init: Params,
        defense: DefenseSteps,
        evaluate: Callable[[Params], float],
        on_round: Callable[[int, float], None] | None = None,
        recipe: Callable[[int], LocalRecipe] | None = None,
        max_update_norm: float = float("inf"),
        **fedavg: Any,
    ):
        self.names = list(init)
        self.device = params_device(init)
        super().__init__(initial_parameters=self._parameters(init), on_fit_config_fn=self._fit_config, **fedavg)
        self.observers, self.defense, self.evaluate_params, self.on_round = list(observers), defense, evaluate, on_round
        self.recipe, self.max_update_norm = recipe, max_update_norm
        self._global: Params = dict(init)
        self._sent_recipe: LocalRecipe | None = None
        self.final: Params = dict(init)
        self.accuracies: list[float] = []
        self.participants: list[list[int]] = []
        self.rejected: list[dict[str, Any]] = []

    def _parameters(self, params: Params) -> Parameters:
        return ndarrays_to_parameters([params[n].detach().cpu().numpy() for n in self.names])

    def _params(self, parameters: Parameters) -> Params:
        arrays = parameters_to_ndarrays(parameters)
        return {n: torch.from_numpy(np.asarray(a, np.float32)).to(self.device) for n, a in zip(self.names, arrays)}

    def _fit_config(self, server_round: int) -> dict[str, Scalar]:
        self._sent_recipe = self.recipe(server_round - 1) if self.recipe is not None else None
        config: dict[str, Scalar] = {"server-round": server_round}
        if self._sent_recipe is not None:
            config.update({key: getattr(self._sent_recipe, field) for field, key in RECIPE_KEYS.items()})
        return config

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, Any]]:
        self._global = self._params(parameters)
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Settle the round's aggregate through `settle_round` and show it to the observers."""
        if not results:
            return None, {}
        t = server_round - 1
        ids = sorted(int(res.metrics[CLIENT_KEY]) for _, res in results)
        for _, res in sorted(results, key=lambda r: int(r[1].metrics[CLIENT_KEY])):
            if REJECTED_KEY in res.metrics:  # the client screened itself out, as the simulator would have
                client, reason = int(res.metrics[CLIENT_KEY]), str(res.metrics[REJECTED_KEY])
                rejection = {"round": t, "client": client, "reason": reason}
                warn(rejection_message(rejection))
                self.rejected.append(rejection)
        self.participants.append(ids)
        mean = self._params(results[0][1].parameters)  # SecAgg+ gave every result the one aggregate
        total = float(sum(res.num_examples for _, res in results))
        round_ = RoundUpdates(
            round=t,
            global_params=self._global,
            client_ids=[AGGREGATE],
            sent={n: v.unsqueeze(0) for n, v in self._global.items()},
            updates={n: v.unsqueeze(0) for n, v in mean.items()},
            num_samples=torch.tensor([total], dtype=torch.float32),
            recipe=self._sent_recipe,
        )
        settled = settle_round(round_, self.max_update_norm, self.defense)
        for r in settled.rejected:  # the aggregate itself: non-finite or too long
            warn(rejection_message(r))
            self.rejected.append(r)
        if settled.observation is not None:
            for observer in self.observers:
                observer.observe(settled.observation)
        return (self._parameters(settled.params), {}) if settled.params is not None else (None, {})

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        """Our held-out accuracy of the shared model after every round (the loss is not computed: NaN)."""
        params = self._params(parameters)
        acc = self.evaluate_params(params)
        if server_round > 0:
            self.final = params
            self.accuracies.append(acc)
            if self.on_round is not None:
                self.on_round(server_round - 1, acc)
        return float("nan"), {"accuracy": acc}


def secagg_fl(grid: Grid, context: Context, timeout: float | None = None) -> FLRunner:
    """An `FLRunner` for `run_audit`: FedAvg on Flower's grid with SecAgg+ between the clients and the server."""

    def run(
        model: nn.Module,
        init: Params,
        data: FederatedDataset,
        cfg: RunConfig,
        observers: list[ServerObserver],
        dispatcher: ModelDispatcher | None,
        on_round: Callable[[int, float], None],
        defense: DefenseSteps,
    ) -> FLResult:
        if dispatcher is not None:
            raise ValueError("secure aggregation cannot send one client a model of its own (the active attack)")
        check_secagg(cfg, data.num_clients)  # flower-sim checked before starting; `flwr run` reaches this first
        seed_node_sampling(cfg.seed)  # the clients Flower samples and SecAgg+'s shuffle of them
        device = params_device(init)
        x_test, y_test = (v.to(device) for v in data.heldout()[:2])
        n = data.num_clients
        sampled = max(1, round(cfg.fl.client_fraction * n))
        counts = [len(c.y_train) for c in data.clients]
        strategy = SecAggAuditStrategy(
            observers,
            init,
            defense,
            evaluate=lambda p: accuracy(model, p, x_test, y_test),
            on_round=on_round,
            recipe=lambda t: local_recipe(cfg.fl, t),
            max_update_norm=cfg.fl.max_update_norm,
            fraction_fit=cfg.fl.client_fraction,
            fraction_evaluate=0.0,
            min_fit_clients=sampled,
            min_available_clients=n,
        )
        workflow = SecAggPlusWorkflow(
            **secaggplus_settings(cfg.fl.max_update_norm, sampled, max(counts)), timeout=timeout
        )
        legacy = LegacyContext(context, config=ServerConfig(num_rounds=cfg.fl.rounds), strategy=strategy)
        DefaultWorkflow(fit_workflow=workflow)(grid, legacy)
        if len(strategy.participants) != cfg.fl.rounds:  # SecAgg+ halts a round quietly (too few clients, shares)
            done = len(strategy.participants)
            raise RuntimeError(f"SecAgg+ aggregated {done} of {cfg.fl.rounds} rounds (see Flower's log)")
        return FLResult(
            final_params=strategy.final,
            test_accuracy=strategy.accuracies,
            participants=strategy.participants,
            rejected=strategy.rejected,
            dropped=[],
        )

    return run
