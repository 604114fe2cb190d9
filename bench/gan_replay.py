"""Attack development: replay one GAN method on a cached FL trace with other settings, and score it.

The FL trace (every round's observation), the representatives and the oracle are
computed once per (seed, clients) and cached (in mganai's download cache, by default);
each call then costs only the GAN's own training instead of a whole audit. Prints the
oracle rates, NN-SSIM and diversity, writes a grid PNG.

    .venv/bin/python bench/gan_replay.py --method mganai-passive --set attack.class_weight=2 --png runs/replay.png
    .venv/bin/python bench/gan_replay.py --seed 0 --gan-seed 3      # the same trace, other GAN draws
    .venv/bin/python bench/gan_replay.py --seed 0 --judge-representatives  # what the identity head learns from
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mganai.attack.bank import RepresentativeBank
from mganai.attack.gan import RECIPES as GAN_RECIPES
from mganai.attack.gan import GanAttack
from mganai.audit.artefacts import comparison_client, method_grid
from mganai.audit.scoring import SAMPLES_SEED_OFFSET, evaluation_classes
from mganai.config import build_config
from mganai.data import load_dataset
from mganai.data.downloads import cache_dir
from mganai.device import set_determinism
from mganai.eval.metrics import nn_ssim, oracle_rates, real_data_reference, sample_diversity
from mganai.eval.oracle import train_oracle
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator
from mganai.io import write_png
from mganai.methods import METHODS

# Every passive GAN method of the registry (the active one needs an FL trace of its own: not replayable here).
RECIPES = {name: GAN_RECIPES[m.recipe] for name, m in METHODS.items() if m.recipe and not m.changes_fl}


class Recorder(RepresentativeBank):
    """The real bank, also keeping every observation and every round's new representatives."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.observations: list[RoundObservation] = []
        self.added: dict[int, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}

    def observe(self, obs: RoundObservation) -> None:
        super().observe(obs)
        self.observations.append(obs)
        a = self.cfg
        if obs.round >= a.start_round and (obs.round - a.start_round) % a.invert_every == 0:
            self.added[obs.round] = [(k, *self.history[k][-1]) for k in obs.client_ids]


class CachedBank(RepresentativeBank):
    """A bank that takes each round's representatives from a recording instead of inverting."""

    def __init__(self, added: dict[int, list], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.added = added

    def observe(self, obs: RoundObservation) -> None:
        for k, reps, labels in self.added.get(obs.round, []):
            self.history[k].append((reps, labels))
        self._pool = None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=sorted(RECIPES), default="mganai-passive")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--gan-seed", type=int, help="seed of the GAN alone (default: --seed); the trace stays --seed's")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="config overrides, e.g. attack.jitter=0")
    p.add_argument("--cache-dir", default=str(cache_dir() / "gan-replay"), help="where the traces are cached")
    p.add_argument("--png", help="where to write the grid")
    p.add_argument(
        "--judge-representatives",
        action="store_true",
        help="instead of a GAN: how often the oracle names each client (and class) in its own representatives",
    )
    args = p.parse_args()
    set_determinism()
    base = {"seed": args.seed, "data.clients": args.clients, "quiet": True}
    cfg = build_config({}, {**base, **{k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}})
    data = load_dataset(cfg.data, cfg.seed)
    shape, n, c = data.image_shape, data.num_clients, data.num_classes
    model = SharedCNN(shape[0], c, shape[1])
    dcfg = build_config({}, base)
    cache = Path(args.cache_dir) / f"trace_seed{args.seed}_clients{args.clients}_every{dcfg.attack.invert_every}.pt"
    if not cache.exists():  # FL and the bank run with the default settings: the trace is what varies least
        rec = Recorder(model, shape, n, dcfg.attack, dcfg.seed)
        init = params_of(seeded(lambda: SharedCNN(shape[0], c, shape[1]), dcfg.seed))
        fl = FedAvgSimulator(model, init, data, dcfg.fl, dcfg.seed, observers=[rec]).run()
        oracle = train_oracle(data, dcfg.seed + dcfg.eval.oracle_seed_offset, dcfg.eval.oracle_epochs)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"obs": rec.observations, "added": rec.added, "final": fl.final_params, "oracle": oracle}, cache)
    saved = torch.load(cache, weights_only=False)  # our own cache file, written just above
    if args.judge_representatives:
        judge_representatives(saved, dcfg.attack.rep_pool_rounds, n)
        return
    t0 = time.process_time()
    bank = CachedBank(saved["added"], model, shape, n, cfg.attack, cfg.seed)
    gan_seed = cfg.seed if args.gan_seed is None else args.gan_seed
    gan = GanAttack(RECIPES[args.method], model, bank, c, n, cfg.attack.victim, shape, cfg.attack, gan_seed)
    for obs in saved["obs"]:
        bank.observe(obs)
        gan.observe(obs)
    gan.finish(saved["final"])
    classes = evaluation_classes(c, cfg.eval.samples_per_class)
    samples = gan.generate(classes, cfg.seed + SAMPLES_SEED_OFFSET)
    v = cfg.attack.victim
    scores = oracle_rates(saved["oracle"], samples, classes, v) | nn_ssim(data, samples, classes, v)
    scores["diversity_ratio"] = sample_diversity(samples, classes) / real_data_reference(data, v)["victim_diversity"]
    scores["gan_cpu_s"] = time.process_time() - t0
    print(" ".join(f"{k}={x:.3f}" for k, x in scores.items()))
    if args.png:
        write_png(args.png, method_grid(data, v, comparison_client(data, v), samples, classes, 8))


def judge_representatives(saved: dict, pool_rounds: int, clients: int) -> None:
    """Per client, the oracle's verdict on the representatives of the bank's last `pool_rounds` inversions.

    The discriminator's identity head learns client identity from these images only: a client
    the oracle cannot recognise in them is one the identity term cannot teach the generator.
    """
    rounds = sorted(saved["added"])[-pool_rounds:]
    by_client: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for r in rounds:
        for k, reps, labels in saved["added"][r]:
            by_client.setdefault(k, []).append((reps, labels))
    rates = []
    for k in sorted(by_client):
        x, y = (torch.cat(t) for t in zip(*by_client[k]))
        client, label = saved["oracle"].predict(x)
        named = torch.bincount(client, minlength=clients)
        who, cls = float(named[k]) / len(x), float((label == y).float().mean())
        print(f"client {k}: identity {who:.2f} class {cls:.2f}; named as each client: {named.tolist()}")
        rates.append(who)
    print(f"mean identity {sum(rates) / len(rates):.3f} over {len(rates)} clients, {len(rounds)} inverted rounds")


if __name__ == "__main__":
    main()
