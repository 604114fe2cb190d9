"""FedAvg for Flower that lets mganai's attack watch every client's individual update.

A malicious (or audited) Flower server sees each client's reply before averaging.
`AuditStrategy` subclasses Flower's Message-API `FedAvg` (`flwr.serverapp.strategy`,
current in flwr 1.42; the legacy `flwr.server.strategy` fit/evaluate API is the old
one): after each training round it stacks the replies (updates = returned model -
model sent, over clients in ascending client id) and settles the round with the
simulator's own function (`mganai.fl.settle.settle_round`: screen, defend,
average, observe), then hands the `RoundObservation` to the same observers. A
`ModelDispatcher` (the active attack) may send one client a different model; that
client's update is then left out of the average, exactly as in the simulator. So
FL on Flower is bit-identical to `mganai run --engine loop` for the same seed.

Client identity: Flower addresses nodes by node id, which says nothing about whose
data a node holds. Each ClientApp reports its partition id in its training metrics
(key `client_key`, default "partition-id"); the strategy maps node id -> client id
from those replies. A client is therefore known from its first reply on: a
dispatcher can only target it from the second round on (our active attack starts
at `attack.start_round`, default 5).

Local training recipe: given `recipe` (round -> `LocalRecipe`), the strategy sends
each round's learning rate, momentum, local epochs, batch size and step cap in the round's
config (keys `RECIPE_KEYS`), the ClientApp trains with what it was sent, and the
observers see it in `RoundObservation.recipe`, as in the simulator.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from logging import WARNING
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords
from flwr.supercore import log

from mganai.fl.faults import dropout_generator, dropouts
from mganai.fl.model import Params, clone_params
from mganai.fl.observers import ModelDispatcher, ServerObserver
from mganai.fl.recipe import LocalRecipe
from mganai.fl.settle import NO_DEFENSE, DefenseSteps, RoundUpdates, rejection_message, settle_round
from mganai.flower.training import RECIPE_KEYS

CLIENT_KEY = "partition-id"


def params_from_record(record: ArrayRecord, device: torch.device | str = "cpu") -> Params:
    """An ArrayRecord as our parameter dict (float tensors by name, own memory, on `device`)."""
    return {k: v.to(device, copy=True) for k, v in record.to_torch_state_dict().items()}


def record_from_params(params: Params) -> ArrayRecord:
    """Our parameter dict as an ArrayRecord (what crosses the wire)."""
    return ArrayRecord.from_torch_state_dict({k: v.detach().cpu() for k, v in params.items()})


def seed_node_sampling(seed: int) -> None:
    """Seed Python's global `random`, which Flower's strategies (and SecAgg+'s shuffle) sample nodes with.

    Called at the start of every FL run of a ServerApp, so under `fl.client_fraction` < 1 the same seed samples
    the same positions in the grid's node list. Flower draws node ids at random when nodes register, so on a
    deployment or in flower-sim the same positions are not necessarily the same clients (docs/flower.md).
    """
    random.seed(seed)


def _single(records: Any, kind: str) -> Any:
    """The one record of a kind in a reply (FedAvg requires exactly one)."""
    values = list(records.values())
    if len(values) != 1:
        raise ValueError(f"expected exactly one {kind} in a training reply, got {len(values)}")
    return values[0]


class AuditStrategy(FedAvg):
    """FedAvg whose every training round is shown to mganai observers.

    `observers` receive a `RoundObservation` per round (copies: they cannot change
    FL), its tensors on `device` (where the attack computes); `dispatcher`, if given,
    decides per client which model it receives. With `dropout` > 0 (and `num_clients`),
    each round's replies of the clients that `mganai run --dropout` would drop (the same
    seeded draws) are discarded as if they never came. Every other keyword goes to `FedAvg` unchanged.
    """

    def __init__(
        self,
        observers: Sequence[ServerObserver] = (),
        dispatcher: ModelDispatcher | None = None,
        client_key: str = CLIENT_KEY,
        node_to_client: dict[int, int] | None = None,
        max_update_norm: float = float("inf"),
        device: torch.device | str = "cpu",
        defense: DefenseSteps = NO_DEFENSE,
        recipe: Callable[[int], LocalRecipe] | None = None,
        dropout: float = 0.0,
        num_clients: int = 0,
        seed: int = 0,
        **fedavg: Any,
    ):
        fedavg.setdefault("train_metrics_aggr_fn", self._aggregate_metrics)
        super().__init__(**fedavg)
        self.observers = list(observers)
        self.dispatcher = dispatcher
        self.client_key = client_key
        self.node_to_client: dict[int, int] = dict(node_to_client or {})
        self._global: Params = {}
        self._custom: dict[int, Params] = {}  # node id -> model sent instead of the shared one
        self.participants: list[list[int]] = []  # client ids that replied, per round
        self.max_update_norm = max_update_norm  # longer (or non-finite) updates are rejected, as in the simulator
        self.rejected: list[dict[str, Any]] = []
        self.device = torch.device(device)
        self.defense = defense  # what a defense does to each round's accepted updates (`settle_round`)
        # central DP: the replies as received, before Flower's server-side wrapper clipped them (node -> record)
        self.raw_records: dict[int, ArrayRecord] | None = None
        self.recipe = recipe  # round (0-based) -> the local training sent to every client
        self._sent_recipe: LocalRecipe | None = None
        self.dropout, self.num_clients = dropout, num_clients  # simulated faults, as in FedAvgSimulator
        self._dropout = dropout_generator(seed)
        self.dropped: list[dict[str, int]] = []

    def _aggregate_metrics(self, records: list[RecordDict], weighted_by_key: str) -> MetricRecord:
        """FedAvg's weighted metric average, minus the client id (an average of ids means nothing)."""
        metrics = aggregate_metricrecords(records, weighted_by_key)
        metrics.pop(self.client_key, None)
        return metrics

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """FedAvg's messages (with the round's recipe, if any), a dispatcher-chosen model for the clients it targets."""
        self._sent_recipe = self.recipe(server_round - 1) if self.recipe is not None else None
        if self._sent_recipe is not None:
            for field, key in RECIPE_KEYS.items():
                config[key] = getattr(self._sent_recipe, field)
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._global = params_from_record(arrays, self.device)
        self._custom = {}
        if self.dispatcher is None:
            return messages
        out = []
        t = server_round - 1  # Flower counts rounds from 1, our observers from 0
        for msg in messages:
            node = msg.metadata.dst_node_id
            client = self.node_to_client.get(node)
            custom = None if client is None else self.dispatcher.model_for(t, client, clone_params(self._global))
            if custom is None:
                out.append(msg)
                continue
            self._custom[node] = clone_params(custom)
            # FedAvg's messages share one RecordDict: the targeted node gets its own.
            content = RecordDict(
                {self.arrayrecord_key: record_from_params(custom), self.configrecord_key: ConfigRecord(dict(config))}
            )
            out.append(Message(content=content, dst_node_id=node, message_type=MessageType.TRAIN))
        return out

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Show the round to the observers, then FedAvg over the clients that got the shared model."""
        replies = list(replies)
        rows = []  # (client, node, reply, end params, samples)
        for reply in replies:
            if reply.has_error():
                continue
            node = reply.metadata.src_node_id
            metrics = _single(reply.content.metric_records, "MetricRecord")
            if self.client_key not in metrics:
                raise ValueError(
                    f"client reply from node {node} has no '{self.client_key}' metric: "
                    "the ClientApp must report its partition id so the attack can tell clients apart"
                )
            client = int(metrics[self.client_key])
            known = self.node_to_client.setdefault(node, client)
            if known != client:
                log(WARNING, "node %d reported client %d, earlier %d; using %d", node, client, known, client)
                self.node_to_client[node] = client
            ends = params_from_record(_single(reply.content.array_records, "ArrayRecord"), self.device)
            rows.append((client, node, reply, ends, float(metrics[self.weighted_by_key])))
        rows.sort(key=lambda r: r[0])
        gone = dropouts(self.num_clients, self.dropout, self._dropout) if self.num_clients else set()
        self.dropped += [{"round": server_round - 1, "client": r[0]} for r in rows if r[0] in gone]
        rows = [r for r in rows if r[0] not in gone]
        self.participants.append([r[0] for r in rows])
        sent = [self._custom.get(node, self._global) for _, node, _, _, _ in rows]
        names = list(self._global) if rows else []
        round_ = RoundUpdates(
            round=server_round - 1,  # Flower counts rounds from 1, our observers from 0
            global_params=self._global,
            client_ids=[r[0] for r in rows],
            sent={n: torch.stack([s[n] for s in sent]) for n in names},
            updates={n: torch.stack([r[3][n] - s[n] for r, s in zip(rows, sent)]) for n in names},
            num_samples=torch.tensor([r[4] for r in rows], dtype=torch.float32),
            dispatched=frozenset(r[0] for r in rows if r[1] in self._custom),
            recipe=self._sent_recipe,
        )
        defense = self.defense
        if self.raw_records is not None:  # the server saw the raw replies; it averages the ones Flower clipped
            from mganai.flower.defenses import with_updates_of

            raw = [params_from_record(self.raw_records[r[1]], self.device) for r in rows]
            clipped = round_
            round_ = replace(round_, updates={n: torch.stack([e[n] - s[n] for e, s in zip(raw, sent)]) for n in names})
            defense = replace(defense, server=(with_updates_of(clipped), *defense.server))
        settled = settle_round(round_, self.max_update_norm, defense)
        if settled.rejected:  # out of the average and out of the observation, as in FedAvgSimulator
            from mganai.fl.server import warn

            for r in settled.rejected:
                warn(rejection_message(r))
            self.rejected += settled.rejected
        arrays, metrics = None, None
        if settled.params is not None:
            # FedAvg checks the replies and averages their metrics; the model is settle_round's
            # (M + weighted mean of updates, the simulator's arithmetic), which FedAvg's sum_k w_k M_k
            # equals up to float rounding, so FL is bit-identical to `mganai run --engine loop`.
            reply_of = {r[0]: r[2] for r in rows}
            _, metrics = super().aggregate_train(server_round, [reply_of[k] for k in settled.aggregated])
            arrays = record_from_params(settled.params)
        if settled.observation is not None:
            for observer in self.observers:
                observer.observe(settled.observation)
        return arrays, metrics


def accuracy_fn(
    evaluate: Callable[[Params], float],
    on_round: Callable[[int, float], None] | None = None,
    device: torch.device | str = "cpu",
) -> Callable[[int, ArrayRecord], MetricRecord]:
    """A Flower `evaluate_fn`: our held-out accuracy of the shared model (on `device`) after every round."""

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        acc = evaluate(params_from_record(arrays, device))
        if server_round > 0 and on_round:
            on_round(server_round - 1, acc)
        return MetricRecord({"accuracy": acc})

    return evaluate_fn
