"""Defenses: clipping, noise, the accountant, secure aggregation's view, the shuffler and the linkability attack."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
from tests.tinyrun import TINY_AUDIT, run_cli

from mganai.attack.linkability import AggregateAsVictim, Relinker, linkage_accuracy
from mganai.config import ConfigError, DefenseConfig, build_config
from mganai.fl.accounting import privacy, rdp_epsilon
from mganai.fl.aggregate import apply_update, weighted_mean
from mganai.fl.defenses import (
    AGGREGATE,
    ShuffleLedger,
    central_noise,
    clip,
    defense_steps,
    local_noise,
    shuffle_order,
)
from mganai.fl.faults import update_norms
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.server import FedAvgSimulator
from mganai.fl.settle import RoundUpdates, settle_round


def _round(k: int = 5, scale: float = 3.0, round_: int = 1) -> RoundUpdates:
    gen = torch.Generator().manual_seed(round_)
    g = {"w": torch.randn(40, 30, generator=gen), "b": torch.randn(30, generator=gen)}
    sent = {n: v.expand(k, *v.shape).clone() for n, v in g.items()}
    updates = {n: scale * torch.randn(k, *v.shape, generator=gen) / 30 for n, v in g.items()}
    return RoundUpdates(round_, g, list(range(0, 2 * k, 2)), sent, updates, torch.arange(1.0, k + 1))


class Recorder:
    def __init__(self) -> None:
        self.seen = []

    def observe(self, obs) -> None:
        self.seen.append(obs)


@pytest.mark.parametrize("c", [0.05, 0.5, 5.0])
def test_clipping_bounds_every_accepted_update_and_leaves_short_ones_alone(c):
    r = _round()
    before = update_norms(r.updates)
    after = update_norms(clip(c)(r).updates)
    assert (after <= c * (1 + 1e-6)).all()
    short = before <= c
    assert torch.allclose(after[short], before[short])
    assert torch.allclose(after[~short], torch.full_like(after[~short], c), rtol=1e-5)
    for name in ("central-dp", "client-dp", "local-dp"):  # through the whole settlement: what is averaged is clipped
        steps = defense_steps(DefenseConfig(name=name, dp_noise=0.0, dp_clip=c), seed=0)
        settled = settle_round(r, 1000.0, steps)
        mean = {n: settled.params[n] - r.global_params[n] for n in r.global_params}
        assert float(update_norms({n: v.unsqueeze(0) for n, v in mean.items()})[0]) <= c * (1 + 1e-5)


def test_central_noise_has_the_configured_scale_sigma_c_over_m():
    sigma, c, m = 0.7, 2.0, 5
    mean = {"w": torch.zeros(200, 100), "b": torch.zeros(100)}
    noised = central_noise(sigma, c, seed=3)(mean, _round(k=m), m)
    x = torch.cat([v.flatten() for v in noised.values()])
    want = sigma * c / m
    # 20,100 draws: the sample std is within 2 % of the truth with overwhelming probability (fixed seed anyway)
    assert abs(float(x.std()) - want) < 0.02 * want and abs(float(x.mean())) < 0.02 * want
    again = central_noise(sigma, c, seed=3)(mean, _round(k=m), m)
    assert all(torch.equal(noised[n], again[n]) for n in mean)  # seeded by (seed, round): reproducible


def test_local_noise_has_scale_sigma_c_per_client_and_each_client_its_own_draw():
    r = _round(k=3)
    zero = dataclasses.replace(r, updates={n: torch.zeros_like(v) for n, v in r.updates.items()})
    noised = local_noise(0.5, 3.0, seed=1)(zero)
    x = torch.cat([v.flatten(1) for v in noised.updates.values()], dim=1)
    assert torch.allclose(x.std(dim=1), torch.full((3,), 1.5), rtol=0.03)
    assert not torch.equal(x[0], x[1])
    alone = local_noise(0.5, 3.0, seed=1)(zero.select([1]))  # client 2's draw does not depend on who else took part
    assert torch.equal(torch.cat([v.flatten(1) for v in alone.updates.values()], dim=1)[0], x[1])


def test_epsilon_is_monotone_in_sigma_and_rounds_and_none_without_dp():
    sigmas = [0.3, 0.5, 1.0, 2.0, 4.0]
    eps = [rdp_epsilon(s, 1.0, 40, 1e-2) for s in sigmas]
    assert all(a > b for a, b in itertools.pairwise(eps))
    by_rounds = [rdp_epsilon(1.0, 1.0, t, 1e-2) for t in (1, 5, 20, 80)]
    assert all(a < b for a, b in itertools.pairwise(by_rounds))
    assert rdp_epsilon(1.0, 0.1, 40, 1e-2) < rdp_epsilon(1.0, 1.0, 40, 1e-2)  # client sampling amplifies
    assert math.isinf(rdp_epsilon(0.0, 1.0, 40, 1e-2))
    central = privacy(DefenseConfig("central-dp", 1.0, 1.0), 10, 40, 1.0, 40)
    assert central["delta"] == pytest.approx(0.01) and central["epsilon"] == pytest.approx(eps[2])
    local = privacy(DefenseConfig("local-dp", 1.0, 1.0), 10, 40, 1.0, 40)
    assert local["epsilon"] == pytest.approx(rdp_epsilon(0.5, 1.0, 40, 0.01))  # replacement: σ/2, no amplification
    for name in ("none", "secagg", "shuffle"):
        assert privacy(DefenseConfig(name), 10, 40, 1.0, 40)["epsilon"] is None
    assert privacy(DefenseConfig("client-dp", 0.0, 1.0), 10, 40, 1.0, 40)["epsilon"] is None  # clipping only


def test_under_secure_aggregation_no_observer_ever_receives_an_individual_update(small_fed):
    """A recorder at the FL boundary and one behind the attack's view: each round holds one update, the mean."""
    fl = {"data.clients": small_fed.num_clients, "fl.rounds": 3, "fl.batch_size": 8, "attack.methods": "none"}
    cfg = build_config(overrides=fl)
    model = SharedCNN(1, small_fed.num_classes, small_fed.image_shape[1])
    init = params_of(seeded(lambda: SharedCNN(1, small_fed.num_classes, small_fed.image_shape[1]), 0))
    steps = defense_steps(DefenseConfig("secagg"), 0)
    boundary, behind = Recorder(), Recorder()
    sim = FedAvgSimulator(model, init, small_fed, cfg.fl, 0, [boundary, AggregateAsVictim([behind], 1)], None, steps)
    plain = FedAvgSimulator(model, init, small_fed, cfg.fl, 0).run()
    result = sim.run()
    assert all(torch.equal(result.final_params[n], plain.final_params[n]) for n in plain.final_params)  # FL unchanged
    assert len(boundary.seen) == 3
    for obs, named in zip(boundary.seen, behind.seen):
        assert obs.client_ids == [AGGREGATE] and named.client_ids == [1]
        assert all(v.shape[0] == 1 for v in obs.updates.values())
        assert obs.num_samples.tolist() == [float(sum(len(c.y_train) for c in small_fed.clients))]


def test_secure_aggregation_observation_is_exactly_the_update_of_the_shared_model():
    r = _round()
    settled = settle_round(r, 1000.0, defense_steps(DefenseConfig("secagg"), 0))
    want = apply_update(r.global_params, weighted_mean(r.updates, r.num_samples))
    obs = settled.observation
    for n in want:
        assert torch.equal(settled.params[n], want[n])
        assert torch.equal(obs.global_params[n] + obs.updates[n][0], want[n])


def test_shuffling_changes_ids_every_round_and_linkage_is_scored_against_the_hidden_truth():
    ledger = ShuffleLedger()
    steps = defense_steps(DefenseConfig("shuffle"), seed=4, ledger=ledger)
    rounds = [_round(k=6, round_=t) for t in range(6)]
    observed = [settle_round(r, 1000.0, steps).observation for r in rounds]
    truths = [ledger.truth[t] for t in range(6)]
    assert all(o.client_ids == list(range(6)) for o in observed)  # pseudonyms only
    assert len({tuple(t) for t in truths}) == 6  # who stands behind pseudonym j changes every round
    for r, o, truth in zip(rounds, observed, truths):  # pseudonym j holds the update of client truth[j]
        assert truth == [r.client_ids[i] for i in shuffle_order(4, r.round, 6)]
        for j, k in enumerate(truth):
            assert torch.equal(o.updates["w"][j], r.updates["w"][r.client_ids.index(k)])
    # linkage_accuracy: perfect tracks score 1; tracks that swap two clients after round 2 lose them from then on
    perfect = {t: list(truths[t]) for t in range(6)}
    assert linkage_accuracy(perfect, {t: truths[t] for t in range(6)}, victim=truths[0][0])["linkage_accuracy"] == 1.0
    ids = sorted(truths[0])
    straight = {t: ids for t in range(4)}
    swapped = {0: ids, 1: ids, 2: [ids[1], ids[0], *ids[2:]], 3: [ids[1], ids[0], *ids[2:]]}
    scored = linkage_accuracy(swapped, straight, victim=ids[0])
    assert scored["linkage_accuracy_per_round"] == [1.0, 1.0, 4 / 6, 4 / 6]
    assert scored["victim_track_purity"] == 0.5


def test_the_relinker_follows_clients_whose_updates_keep_their_direction():
    """Clients with a persistent direction of their own, shuffled every round: every update lands on its track."""
    gen = torch.Generator().manual_seed(0)
    own = torch.randn(8, 300, generator=gen)
    ledger = ShuffleLedger()
    steps = defense_steps(DefenseConfig("shuffle"), seed=2, ledger=ledger)
    behind = Recorder()
    relinker = Relinker([behind], 8, victim=5, victim_hint=lambda t: ledger.pseudonym_of(5, t))
    for t in range(10):
        common = torch.randn(300, generator=gen)
        u = own + common + 0.5 * torch.randn(8, 300, generator=gen)
        r = RoundUpdates(
            t, {"w": torch.zeros(300)}, list(range(8)), {"w": torch.zeros(8, 300)}, {"w": u}, torch.ones(8)
        )
        relinker.observe(settle_round(r, 1e9, steps).observation)
    scored = linkage_accuracy(relinker.assignments, ledger.truth, victim=5)
    assert scored["linkage_accuracy"] == 1.0 and scored["victim_track_purity"] == 1.0
    # the attack behind it sees the victim's update under the victim's id every round
    assert all(ledger.truth[obs.round][obs.client_ids.index(5)] == 5 for obs in behind.seen)


@pytest.mark.slow
def test_a_tiny_audit_under_each_defense_writes_its_defense_section(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_AUDIT)
    for name in ("central-dp", "shuffle"):
        out = tmp_path / name
        code, _, err = run_cli(
            [
                "run",
                "--config",
                str(config),
                "--quiet",
                "--out",
                str(out),
                "--methods",
                "mganai-passive",
                "--defense",
                name,
                "--dp-noise",
                "0.5",
                "--dp-clip",
                "2",
            ]
        )
        assert code == 0, err
        import json

        d = json.loads((out / "metrics.json").read_text())["defense"]
        assert d["name"] == name
        if name == "central-dp":
            assert d["epsilon"] > 0 and d["delta"] == pytest.approx(1 / 30) and d["clipping_norm"] == 2.0
        else:
            assert d["epsilon"] is None and len(d["linkage_accuracy_per_round"]) == 4


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--defense", "central-dp", "--dp-noise", "-1"], "dp_noise"),
        (["--defense", "client-dp", "--dp-clip", "0"], "dp_clip"),
        (["--dp-delta", "0"], "dp_delta"),
        (["--dp-delta", "1.5"], "dp_delta"),
        (["--defense", "secagg"], "mganai-active"),  # the default methods include the active attack
        (["--defense", "shuffle", "--methods", "mganai-active"], "mganai-active"),
    ],
)
def test_bad_defense_parameters_are_one_line_errors_exit_2_nothing_written(tmp_path, args, mentions):
    out = tmp_path / "out"
    code, _, err = run_cli(["run", "--out", str(out), *args])
    assert code == 2 and err.count("\n") == 1 and mentions in err
    assert not out.exists()


def test_flower_sim_refuses_a_defense_flower_cannot_run(tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli(["flower-sim", "--out", str(out), "--defense", "shuffle", "--methods", "mganai-passive"])
    assert code == 2 and err.count("\n") == 1 and "no Flower implementation" in err
    assert not out.exists()


def test_flower_local_dp_mod_is_given_parameters_that_make_its_noise_sigma_c():
    pytest.importorskip("flwr")
    from flwr.clientapp.mod import LocalDpMod, fixedclipping_mod

    from mganai.flower.defenses import client_mods

    cfg = build_config(overrides={"defense.name": "local-dp", "defense.dp_noise": 0.3, "defense.dp_clip": 2.0})
    mods = client_mods(cfg, num_clients=10)
    mod = mods[-1]
    assert isinstance(mod, LocalDpMod) and mod.clipping_norm == 2.0 and mod.delta == pytest.approx(0.01)
    assert mod.sensitivity * math.sqrt(2 * math.log(1.25 / mod.delta)) / mod.epsilon == pytest.approx(0.6)
    client = build_config(overrides={"defense.name": "client-dp", "attack.methods": "mganai-passive"})
    assert client_mods(client, 10) == [fixedclipping_mod]


@pytest.mark.ray
@pytest.mark.parametrize("name", ["client-dp", "central-dp", "local-dp"])
def test_flower_dp_components_clip_like_the_simulator(tmp_path, name):
    """Without noise (σ = 0) Flower's clipping (mod, wrapper) and the simulator's give the same FL, round by round."""
    pytest.importorskip("flwr")
    import json

    config = tmp_path / "c.toml"
    config.write_text("seed = 3\n[data]\nclients = 3\n[fl]\nrounds = 2\nbatch_size = 32\nlocal_epochs = 1\n")
    common = ["--config", str(config), "--methods", "none", "--quiet", "--defense", name, "--dp-noise", "0"]
    common += ["--dp-clip", "0.5"]
    assert run_cli(["flower-sim", *common, "--out", str(tmp_path / "f")])[0] == 0
    assert run_cli(["run", *common, "--engine", "loop", "--out", str(tmp_path / "s")])[0] == 0
    flower, sim = (json.loads((tmp_path / d / "metrics.json").read_text())["fl"] for d in ("f", "s"))
    assert flower["test_accuracy_per_round"] == pytest.approx(sim["test_accuracy_per_round"], abs=1e-9)


def test_a_sweep_plans_one_audit_per_grid_point_with_an_undefended_reference_and_no_duplicates(tmp_path):
    from mganai.audit.sweep import parse_vary, plan_sweep

    base = build_config(overrides={"attack.methods": "mganai-passive"})
    vary = parse_vary(["defense.name=central-dp,secagg", "defense.dp_noise=0.1,1"])
    planned = plan_sweep(base, vary, tmp_path)
    names = [n for n, _ in planned]
    assert names == ["none", "central-dp_dp_noise0.1", "central-dp_dp_noise1", "secagg"]  # secagg once: no DP
    cfgs = dict(planned)
    assert cfgs["central-dp_dp_noise0.1"].defense.dp_noise == 0.1 and cfgs["none"].defense.name == "none"
    assert cfgs["secagg"].out == str(tmp_path / "secagg")
    # an undefended grid is its own reference
    assert [n for n, _ in plan_sweep(base, parse_vary(["fl.local_steps=1,0"]), tmp_path)] == [
        "local_steps1",
        "local_steps0",
    ]
    with pytest.raises(ConfigError):
        plan_sweep(base, parse_vary(["defense.dp_noise=-1"]), tmp_path)  # every point validated before any runs
    with pytest.raises(ConfigError):
        parse_vary(["defense.dp_noise"])


def test_compare_averages_runs_only_within_one_defense():
    """Seeds of one defense setting are averaged; a DP run and an undefended one never are, whatever its ε."""
    from mganai.report.compare import Comparison, summary_rows
    from mganai.report.tables import defense_group

    central = {"name": "central-dp", "noise_multiplier": 0.5, "clipping_norm": 1.0, "epsilon": 3.2, "delta": 0.01}
    assert defense_group({"defense": central}) == defense_group({"defense": {**central, "epsilon": 9.9}})
    assert defense_group({}) == defense_group({"defense": {"name": "none"}}) == "none"
    groups = {"a": "none", "b": "none", "c": defense_group({"defense": central}), "d": defense_group({})}
    rows = [
        {
            "run": r,
            "method": "m",
            "threat": "updates-only",
            "defense_group": g,
            "joint_success": 0.9 if g == "none" else 0.1,
        }
        for r, g in groups.items()
    ]
    cmp = Comparison([], list(groups), dict.fromkeys(groups, ""), dict.fromkeys(groups, "updates-only"), rows, ["m"])
    means = summary_rows(cmp)
    assert [(s["run"], s["defense"], s["joint_success"]) for s in means] == [("mean of 3 runs", "none", 0.9)]
