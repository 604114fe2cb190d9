"""Flower's SecAgg+ on a real loopback deployment against plain FedAvg of the same updates.

Starts a SuperLink and N SuperNodes on 127.0.0.1 (`examples/flower/deploy_loopback.py`)
and submits, with `flwr run`, a copy of `examples/flower/` whose components are a
probe module wrapping mganai's deployment apps (`mganai.flower.app:server_app` /
`client_app`) under `defense.name='secagg'`. The probe records, in
`$MGANAI_SECAGG_PROBE`, what each ClientApp process submits to `secaggplus_mod` (its
update, float64, and its sample count, plus the model it was sent) and, in the
ServerApp process, the aggregate SecAgg+ unmasked. The recording is the bench's own
instrument: the server of the audit never sees an individual update.

For every round it prints the largest per-coordinate difference between the loopback
SecAgg+ aggregate and the simulator's FedAvg (`mganai.fl.aggregate.weighted_mean`)
of the same updates, next to the quantisation bound; and whether every client's
update equals what the simulator's own training computes in this process from the
model that client was sent.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python bench/secagg_loopback.py [--nodes 3] [--rounds 3]

PYTHONPATH must be absolute: the deployment's processes start in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples/flower"))

from deploy_loopback import APP_DIR, deploy  # noqa: E402

from mganai.config import build_config  # noqa: E402
from mganai.data.public import load_federation  # noqa: E402
from mganai.fl.aggregate import weighted_mean  # noqa: E402
from mganai.fl.model import SharedCNN  # noqa: E402
from mganai.flower.secagg import quantisation_bound, quantisation_range  # noqa: E402
from mganai.flower.training import train_client  # noqa: E402

PROBE_ENV = "MGANAI_SECAGG_PROBE"

PROBE = '''"""mganai's deployment apps, recording what SecAgg+ is given and returns (bench/secagg_loopback.py)."""

import os
from pathlib import Path

import numpy as np
from flwr.common import parameters_to_ndarrays

from mganai.flower import app, secagg

DUMP = Path(os.environ["MGANAI_SECAGG_PROBE"])
_fit = secagg.SecAggClient.fit
_aggregate = secagg.SecAggAuditStrategy.aggregate_fit


def _recorded_fit(self, parameters, config):
    arrays, n, metrics = _fit(self, parameters, config)
    name = f"client-r{int(config['server-round'])}-c{self.client}.npz"
    sent = {f"g{i}": a for i, a in enumerate(parameters)}
    np.savez(DUMP / name, n=n, **{f"u{i}": a for i, a in enumerate(arrays)}, **sent)
    return arrays, n, metrics


def _recorded_aggregate(self, server_round, results, failures):
    if results:
        arrays = parameters_to_ndarrays(results[0][1].parameters)
        np.savez(DUMP / f"aggregate-r{server_round}.npz", **{f"a{i}": a for i, a in enumerate(arrays)})
    return _aggregate(self, server_round, results, failures)


secagg.SecAggClient.fit = _recorded_fit
secagg.SecAggAuditStrategy.aggregate_fit = _recorded_aggregate
server_app = app.server_app
client_app = app.client_app
'''


def probe_app(where: Path) -> Path:
    """A copy of examples/flower whose components are the probe module."""
    app = where / "app"
    app.mkdir()
    text = (APP_DIR / "pyproject.toml").read_text()
    text = text.replace('"mganai.flower.app:server_app"', '"secagg_probe:server_app"')
    text = text.replace('"mganai.flower.app:client_app"', '"secagg_probe:client_app"')
    (app / "pyproject.toml").write_text(text)
    (app / "secagg_probe.py").write_text(PROBE)
    return app


def arrays(npz: np.lib.npyio.NpzFile, prefix: str) -> list[np.ndarray]:
    keys = sorted((k for k in npz.files if re.fullmatch(rf"{prefix}\d+", k)), key=lambda k: int(k[1:]))
    return [npz[k] for k in keys]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=900.0)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mganai-secagg-loopback-"))
    dump = work / "probe"
    dump.mkdir()
    t0 = time.perf_counter()
    summary = deploy(
        a.nodes,
        a.rounds,
        work / "out",
        "mganai-passive",
        a.timeout,
        work / "logs",
        defense="secagg",
        app_dir=probe_app(work),
        extra_env={PROBE_ENV: str(dump)},
    )
    seconds = time.perf_counter() - t0
    print(f"loopback run {summary['run_id']}: {summary['status']}, {seconds:.0f} s, listening on {summary['listen']}")
    analyse(dump, a.nodes, a.rounds)
    shutil.rmtree(work, ignore_errors=True)


def analyse(dump: Path, nodes: int, rounds: int) -> None:
    """Per round: the recorded aggregate against the simulator's weighted mean of the recorded updates."""
    # the deployment's settings (deploy_loopback's run config), to retrain each client here
    cfg = build_config({}, {"data.clients": nodes, "fl.rounds": rounds, "fl.local_epochs": 1, "attack.methods": "none"})
    cfg.defense.name = "secagg"
    data = load_federation(cfg.data, cfg.attack.victim, cfg.seed).data
    shape = data.image_shape
    names = list(SharedCNN(shape[0], data.num_classes, shape[1]).state_dict())
    counts = [float(len(c.y_train)) for c in data.clients]
    bound = quantisation_bound(counts, cfg.fl.max_update_norm, quantisation_range(nodes))
    print(f"{nodes} SuperNodes, {rounds} rounds, seed {cfg.seed}; c={cfg.fl.max_update_norm:g}, bound {bound:.3g}")
    print("round  max|loopback SecAgg+ aggregate - weighted_mean of the same updates|  updates equal to ours")
    worst = 0.0
    for r in range(1, rounds + 1):
        aggregate = dict(zip(names, (torch.from_numpy(v) for v in arrays(np.load(dump / f"aggregate-r{r}.npz"), "a"))))
        updates, weights, same = [], [], 0
        for f in sorted(dump.glob(f"client-r{r}-c*.npz")):
            z = np.load(f)
            client = int(f.stem.split("-c")[1])
            update = dict(zip(names, (torch.from_numpy(u).float() for u in arrays(z, "u"))))  # float32 values
            start = dict(zip(names, (torch.from_numpy(np.asarray(g, np.float32)) for g in arrays(z, "g"))))
            ends, _ = train_client(cfg, client, start, {"server-round": r}, lambda c: data)
            same += all(torch.equal(ends[n] - start[n], update[n]) for n in names)
            updates.append(update)
            weights.append(float(z["n"]))
        plain = weighted_mean({n: torch.stack([u[n] for u in updates]) for n in names}, torch.tensor(weights))
        diff = max(float((aggregate[n] - plain[n].double()).abs().max()) for n in names)
        worst = max(worst, diff)
        print(f"{r - 1:5d}  {diff:.3g}  {same}/{len(updates)}")
    print(f"largest {worst:.3g} against the bound {bound:.3g}: {'within' if worst <= bound else 'ABOVE the bound'}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
