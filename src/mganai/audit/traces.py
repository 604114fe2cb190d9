"""FL traces: one FL run with the attack methods that watch it, alone or two side by side.

Every passive method watches the *same* FL trace; methods that change FL (the
active attack) get a second trace with the same seed, in which the server isolates
the victim. With two or more threads the two traces run side by side, one thread
each (`run_side_by_side`).

The FL engine is a parameter (`FLRunner`): our own simulator by default, Flower's
when the audit runs inside a Flower ServerApp (`mganai.flower.app`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mganai.attack.active import VictimIsolation
from mganai.attack.bank import RepresentativeBank
from mganai.attack.concurrent import ConcurrentGans
from mganai.attack.gan import GanAttack
from mganai.attack.linkability import AggregateAsVictim, Relinker
from mganai.config import RunConfig
from mganai.data import FederatedDataset
from mganai.device import cpu_workers
from mganai.eval.curves import CurveProbe
from mganai.fl.defenses import ShuffleLedger, defense_steps
from mganai.fl.model import Params, SharedCNN, clone_params, params_of, seeded
from mganai.fl.observers import ModelDispatcher, ServerObserver
from mganai.fl.server import FedAvgSimulator, FLResult, accuracy
from mganai.fl.settle import DefenseSteps
from mganai.methods import METHODS, AttackParts, Sampler
from mganai.threat import PublicData

if TYPE_CHECKING:
    from mganai.audit.checkpointing import AuditCheckpoints

SIDES = ("passive", "active")  # the two FL traces of an audit, in the order `run_side_by_side` keeps them


@dataclass
class Trace:
    """One FL run and the attack methods that watched it."""

    fl: FLResult
    samplers: dict[str, Sampler] = field(default_factory=dict)
    victim_accuracy: float = float("nan")  # the victim's model on the victim's held-out data
    victim_global_accuracy: float = float("nan")  # the victim's model on every client's held-out data
    seconds: float = 0.0
    bank: RepresentativeBank | None = None
    objects: dict[str, Any] = field(
        default_factory=dict
    )  # what a checkpoint keeps of the attack (`TraceSetup.stateful`)


# (model, initial params, data, config, observers, dispatcher, on_round, the simulator's defense steps) -> the FL run
FLRunner = Callable[
    [
        nn.Module,
        Params,
        FederatedDataset,
        RunConfig,
        list[ServerObserver],
        ModelDispatcher | None,
        Callable[[int, float], None],
        DefenseSteps,
    ],
    FLResult,
]


def simulate(
    model: nn.Module,
    init: Params,
    data: FederatedDataset,
    cfg: RunConfig,
    observers: list[ServerObserver],
    dispatcher: ModelDispatcher | None,
    on_round: Callable[[int, float], None],
    defense: DefenseSteps,
) -> FLResult:
    """The default FL engine: our FedAvg simulator in this process."""
    sim = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers, dispatcher, defense)
    return sim.run(on_round=on_round)


def progress(cfg: RunConfig, label: str) -> tuple[Callable[[int, float], None], Callable[[], None]]:
    """A tqdm bar over FL rounds (silent with --quiet)."""
    from tqdm import tqdm

    bar = tqdm(total=cfg.fl.rounds, desc=label, unit="round", disable=cfg.quiet, leave=False, dynamic_ncols=True)

    def tick(t: int, acc: float) -> None:
        bar.set_postfix(acc=f"{acc:.3f}")
        bar.update(1)

    return tick, bar.close


@dataclass
class TraceSetup:
    """The model, observers and samplers of one FL trace, before it runs."""

    model: nn.Module
    init: Params
    observers: list[Any]
    samplers: dict[str, Sampler]
    gans: ConcurrentGans
    bank: RepresentativeBank | None
    isolation: VictimIsolation | None
    probe: CurveProbe | None
    defense: DefenseSteps  # what the simulator's rounds do to the updates (`mganai.fl.defenses`)
    ledger: ShuffleLedger | None = None  # shuffle: who stood behind each pseudonym (for scoring only)
    relinker: Relinker | None = None  # shuffle: the linkability attack in front of the attack's observers

    def stateful(self) -> dict[str, Any]:
        """Every object whose state a checkpoint keeps, by a stable name."""
        objects: dict[str, Any] = {"bank": self.bank, "isolation": self.isolation, "probe": self.probe}
        objects.update({"ledger": self.ledger, "relinker": self.relinker})
        objects.update({name: s for name, s in self.samplers.items() if isinstance(s, GanAttack)})
        return {k: v for k, v in objects.items() if v is not None}


def _reads_representatives(method: str, public: PublicData | None) -> bool:
    """Whether `method` needs the representative bank: under public data the GANs judge realism against the
    public images instead (`GanAttack.train`), so only a method without a GAN still reads it."""
    m = METHODS[method]
    return m.needs_representatives and (public is None or m.recipe is None)


def setup_trace(
    cfg: RunConfig,
    data: FederatedDataset,
    methods: list[str],
    isolate: bool,
    device: torch.device,
    probe: CurveProbe | None = None,
    public: PublicData | None = None,
) -> TraceSetup:
    """The shared model and the attack observers of a trace, on `device`; with `isolate`, the server isolates the
    victim (the trace of the methods that change FL). `public`: what a server with public data holds (only the
    attack methods get it; FL never sees it)."""
    a = cfg.attack
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1]).to(device)
    init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed).to(device))
    observers: list[Any] = []
    bank = None
    if any(_reads_representatives(m, public) for m in methods):
        bank = RepresentativeBank(model, shape, data.num_clients, a, cfg.seed)
        observers.append(bank)
    isolation = VictimIsolation(a.victim, a.start_round, a.isolation_rebase_every) if isolate else None
    if isolation:
        observers.insert(0, isolation)  # first: the victim's private model follows the round it was sent
    parts = AttackParts(model, bank, data.num_classes, data.num_clients, shape, a, cfg.seed, public)
    samplers = {name: METHODS[name].build(parts) for name in methods}
    group = ConcurrentGans([s for s in samplers.values() if isinstance(s, GanAttack)], cpu_workers(cfg.threads))
    observers.append(group)
    if probe is not None:  # last: it sees each round after every attack has learnt from it
        probe.attach(samplers)
        observers.append(probe)
    ledger = ShuffleLedger() if cfg.defense.name == "shuffle" else None
    observers, relinker = defended_view(cfg, data.num_clients, observers, ledger)
    defense = defense_steps(cfg.defense, cfg.seed, ledger)
    return TraceSetup(model, init, observers, samplers, group, bank, isolation, probe, defense, ledger, relinker)


def defended_view(
    cfg: RunConfig, num_clients: int, observers: list[Any], ledger: ShuffleLedger | None
) -> tuple[list[Any], Relinker | None]:
    """The attack's observers behind what it makes of a defended server's view: the sum taken for the victim's
    update (secagg), or the linkability attack naming anonymous updates by track (shuffle)."""
    victim = cfg.attack.victim
    if cfg.defense.name == "secagg":
        return [AggregateAsVictim(observers, victim)], None
    if ledger is not None:
        relinker = Relinker(observers, num_clients, victim, lambda t: ledger.pseudonym_of(victim, t))
        return [relinker], relinker
    return observers, None


# (trace setup, data, progress tick) -> the FL run of one trace, checkpointed
PhaseRunner = Callable[[TraceSetup, FederatedDataset, Callable[[int, float], None]], FLResult]


def run_trace(
    cfg: RunConfig,
    data: FederatedDataset,
    methods: list[str],
    isolate: bool,
    device: torch.device,
    run_fl: FLRunner = simulate,
    probe: CurveProbe | None = None,
    phase: PhaseRunner | None = None,
    public: PublicData | None = None,
) -> Trace:
    """FedAvg (run by `run_fl`, or by `phase` when checkpointing) with the given attack methods attached;
    `probe` scores them over rounds."""
    start = time.perf_counter()
    setup = setup_trace(cfg, data, methods, isolate, device, probe, public)
    tick, close = progress(cfg, "FL + active attack" if isolate else "FL + passive attacks")
    try:
        if phase is not None:
            fl = phase(setup, data, tick)
        else:
            fl = run_fl(setup.model, setup.init, data, cfg, setup.observers, setup.isolation, tick, setup.defense)
    finally:
        close()
    setup.gans.finish(fl.final_params)
    return close_trace(cfg, data, setup, fl, start)


def close_trace(cfg: RunConfig, data: FederatedDataset, setup: TraceSetup, fl: FLResult, start: float) -> Trace:
    """A trace whose FL and GAN training are done: its last curve point, its victim's model's accuracy."""
    if setup.probe is not None and setup.probe.every > 0:
        setup.probe.score(cfg.fl.rounds, "final")
    victim = data.clients[cfg.attack.victim]
    isolation = setup.isolation
    victim_params = isolation.isolated if isolation and isolation.isolated is not None else fl.final_params
    heldout = data.heldout()
    trace = Trace(
        fl,
        setup.samplers,
        accuracy(setup.model, victim_params, victim.x_test, victim.y_test),
        accuracy(setup.model, victim_params, heldout[0], heldout[1]),
        bank=setup.bank,
    )
    trace.objects = setup.stateful()
    trace.seconds = time.perf_counter() - start
    return trace


def run_side_by_side(
    cfg: RunConfig,
    data: FederatedDataset,
    methods: tuple[list[str], list[str]],
    device: torch.device,
    probes: list[CurveProbe | None],
    ckpt: AuditCheckpoints | None,
    public: PublicData | None = None,
) -> tuple[Trace, Trace]:
    """The passive and the active trace at once, round by round, each on one CPU thread (the passive trace's
    GANs on threads of their own).

    The traces are independent, and the active trace's one GAN gains little from a second intra-op thread,
    so on two cores this finishes sooner than one trace after the other. Each trace computes exactly what
    it computes alone at one thread: the attacks train as in an OMP_NUM_THREADS=1 run.
    """
    start = time.perf_counter()
    setups = [setup_trace(cfg, data, methods[i], i == 1, device, probes[i], public) for i in range(2)]
    sims = [
        FedAvgSimulator(s.model, s.init, data, cfg.fl, cfg.seed, s.observers, s.isolation, s.defense) for s in setups
    ]
    results = [FLResult(final_params=sim.params) for sim in sims]
    if ckpt is not None:
        ckpt.resume_side_by_side(sims, results, setups)
    tick, close = progress(cfg, "FL + passive and active attacks")
    for t, acc in enumerate(results[0].test_accuracy):
        tick(t, acc)
    try:
        with ThreadPoolExecutor(2) as pool:

            def both(work: Callable[[int], Any]) -> list[Any]:
                futures = [pool.submit(_on_one_thread, work, i) for i in range(2)]
                return [f.result() for f in futures]  # re-raises a trace's error here

            for t in range(len(results[0].test_accuracy), cfg.fl.rounds):
                tick(t, both(lambda i: sims[i].next_round(results[i]))[0])
                if ckpt is not None:
                    ckpt.between_rounds_side_by_side(t, sims, results, setups)
            for sim, result in zip(sims, results):
                result.final_params = clone_params(sim.params)
            both(lambda i: setups[i].gans.finish(results[i].final_params))
            passive_trace, active_trace = both(lambda i: close_trace(cfg, data, setups[i], results[i], start))
    finally:
        close()
    return passive_trace, active_trace


def _on_one_thread(work: Callable[[int], Any], i: int) -> Any:
    torch.set_num_threads(1)  # this worker thread only
    return work(i)
