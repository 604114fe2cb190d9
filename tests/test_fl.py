"""FedAvg: aggregation arithmetic, what observers see, dispatchers, engines, determinism."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, vmap
from torch.testing import assert_close

from mganai.fl.aggregate import apply_update, weighted_mean
from mganai.fl.client import client_generator, make_plan, sgd_step, stacked_grads, train_loop, train_vmap, weighted_loss
from mganai.fl.model import FinalPool, Params, SharedCNN, params_of, seeded
from mganai.fl.observers import RoundObservation
from mganai.fl.recipe import LocalRecipe, local_recipe, round_lr
from mganai.fl.server import FedAvgSimulator, sample_clients


class Recorder:
    """An observer that keeps every round's observation."""

    def __init__(self) -> None:
        self.rounds: list[RoundObservation] = []

    def observe(self, obs: RoundObservation) -> None:
        self.rounds.append(obs)


class Vandal:
    """An observer that scribbles over everything it is shown."""

    def observe(self, obs: RoundObservation) -> None:
        for group in (obs.updates, obs.sent, obs.global_params):
            for v in group.values():
                v.mul_(-7.0).add_(3.0)
        obs.num_samples.zero_()
        obs.client_ids.clear()
        obs.aggregated.clear()


class SendOther:
    """Dispatcher that sends `clients` a fixed different model and everyone else the shared one."""

    def __init__(self, params: Params, clients: set[int]) -> None:
        self.params, self.clients = params, clients
        self.calls: list[tuple[int, int]] = []

    def model_for(self, round_: int, client: int, global_params: Params) -> Params | None:
        self.calls.append((round_, client))
        return {k: v.clone() for k, v in self.params.items()} if client in self.clients else None


class MutatingNoOpDispatcher:
    """Sends the shared model to everyone but scribbles over the copy it is handed."""

    def model_for(self, round_: int, client: int, global_params: Params) -> Params | None:
        for v in global_params.values():
            v.zero_()
        return None


def _simulate(model, init, data, cfg, seed=0, observers=(), dispatcher=None):
    sim = FedAvgSimulator(model, init, data, cfg, seed, observers=observers, dispatcher=dispatcher)
    return sim, sim.run()


def _stack(params: Params) -> Params:
    return {k: v.unsqueeze(0) for k, v in params.items()}


def _train_alone(model, data, client: int, start: Params, cfg, seed: int, round_: int) -> Params:
    """What client `client` returns when it trains alone from `start`: the reference for its update."""
    c = data.clients[client]
    plan = make_plan([len(c.y_train)], cfg.batch_size, cfg.local_epochs, [client_generator(seed, round_, client)])
    end = train_loop(model, _stack(start), [c.x_train], [c.y_train], plan, round_lr(cfg, round_), cfg.momentum)
    return {k: end[k][0] - start[k] for k in start}


def _expected_fedavg(old: Params, obs: RoundObservation, clients: list[int]) -> Params:
    """old + sum_k n_k u_k / sum_k n_k over `clients`, in float64 with an explicit loop."""
    total = sum(float(obs.num_samples[obs.position(k)]) for k in clients)
    out = {}
    for name, v in old.items():
        acc = torch.zeros_like(v, dtype=torch.float64)
        for k in clients:
            acc += float(obs.num_samples[obs.position(k)]) * obs.update_of(k)[name].double()
        out[name] = (v.double() + acc / total).float()
    return out


# --- aggregation arithmetic ------------------------------------------------------------------


def test_weighted_mean_matches_independent_weighted_sum():
    gen = torch.Generator().manual_seed(0)
    stacked = {"w": torch.randn(3, 4, 5, generator=gen), "b": torch.randn(3, 7, generator=gen)}
    weights = torch.tensor([1.0, 2.0, 7.0])
    got = weighted_mean(stacked, weights)
    for name, u in stacked.items():
        expected = sum(float(weights[k]) * u[k].double() for k in range(3)) / float(weights.sum())
        assert_close(got[name], expected.float(), rtol=1e-6, atol=1e-7)
        assert got[name].shape == u.shape[1:]
    # Unequal weights really matter here: the plain mean is far from the answer.
    assert not torch.allclose(got["w"], stacked["w"].mean(0), atol=1e-3)


def test_weighted_mean_accepts_integer_counts_and_is_scale_invariant():
    u = {"p": torch.arange(6.0).reshape(3, 2)}
    assert_close(weighted_mean(u, torch.tensor([1, 1, 2]))["p"], torch.tensor([2.5, 3.5]))
    assert_close(weighted_mean(u, torch.tensor([10.0, 10.0, 20.0]))["p"], torch.tensor([2.5, 3.5]))


def test_apply_update_adds_tensorwise():
    p = {"a": torch.ones(2), "b": torch.zeros(1)}
    out = apply_update(p, {"a": torch.tensor([1.0, -2.0]), "b": torch.tensor([0.5])})
    assert torch.equal(out["a"], torch.tensor([2.0, -1.0])) and torch.equal(out["b"], torch.tensor([0.5]))
    assert torch.equal(p["a"], torch.ones(2))  # inputs untouched


# --- one FedAvg round, as the observer sees it --------------------------------------------------


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_new_shared_model_is_old_plus_sample_weighted_mean_of_observed_updates(
    model, init_params, small_fed, fl_cfg, fraction
):
    cfg = dataclasses.replace(fl_cfg, rounds=3, client_fraction=fraction)
    rec = Recorder()
    _, result = _simulate(model, init_params, small_fed, cfg, observers=[rec])
    assert len(rec.rounds) == 3
    ends = [obs.global_params for obs in rec.rounds[1:]] + [result.final_params]
    for obs, new in zip(rec.rounds, ends):
        assert obs.aggregated == obs.client_ids
        sizes = [len(small_fed.clients[k].y_train) for k in obs.client_ids]
        assert obs.num_samples.tolist() == sizes
        expected = _expected_fedavg(obs.global_params, obs, obs.aggregated)
        for name in new:
            assert_close(new[name], expected[name], rtol=1e-5, atol=1e-6)
    assert torch.equal(rec.rounds[0].global_params["classifier.weight"], init_params["classifier.weight"])


@pytest.mark.parametrize("engine", ["loop", "vmap"])
def test_observer_sees_each_sampled_client_with_the_update_it_alone_would_produce(
    model, init_params, small_fed, fl_cfg, engine
):
    cfg = dataclasses.replace(fl_cfg, rounds=3, client_fraction=0.5, engine=engine)
    rec = Recorder()
    _, result = _simulate(model, init_params, small_fed, cfg, seed=5, observers=[rec])
    assert [obs.round for obs in rec.rounds] == [0, 1, 2]
    assert [obs.client_ids for obs in rec.rounds] == result.participants
    for obs in rec.rounds:
        assert len(obs.client_ids) == 2 and obs.client_ids == sorted(set(obs.client_ids))
        for name, v in obs.sent.items():  # no dispatcher: everyone gets the shared model
            assert v.shape[0] == 2
            assert all(torch.equal(v[i], obs.global_params[name]) for i in range(2))
        for k in obs.client_ids:
            alone = _train_alone(model, small_fed, k, obs.sent_to(k), cfg, seed=5, round_=obs.round)
            got = obs.update_of(k)
            for name in alone:
                assert_close(got[name], alone[name], rtol=1e-4, atol=1e-5)
            # A different client's data would give a different update: the ids are not interchangeable.
            other = next(j for j in range(small_fed.num_clients) if j != k)
            wrong = _train_alone(model, small_fed, other, obs.sent_to(k), cfg, seed=5, round_=obs.round)
            assert not torch.allclose(got["classifier.weight"], wrong["classifier.weight"], atol=1e-4)
    with pytest.raises(KeyError):
        absent = next(j for j in range(4) if j not in rec.rounds[0].client_ids)
        rec.rounds[0].update_of(absent)


def test_client_fraction_samples_the_rounded_share_of_clients():
    gen = torch.Generator().manual_seed(0)
    for n, fraction, m in ((10, 0.3, 3), (4, 0.5, 2), (5, 0.01, 1), (6, 1.0, 6)):
        ids = sample_clients(n, fraction, gen)
        assert len(ids) == m and ids == sorted(set(ids)) and all(0 <= i < n for i in ids)


def test_mutating_observations_does_not_change_fl(model, init_params, small_fed, fl_cfg):
    cfg = dataclasses.replace(fl_cfg, rounds=3, client_fraction=0.5)
    _, clean = _simulate(model, init_params, small_fed, cfg)
    rec = Recorder()
    _, vandalised = _simulate(model, init_params, small_fed, cfg, observers=[Vandal(), rec])
    assert len(rec.rounds) == 3  # the vandal really ran before the recorder
    assert all(len(obs.client_ids) == 0 for obs in rec.rounds)
    for name in clean.final_params:
        assert torch.equal(clean.final_params[name], vandalised.final_params[name]), name
    assert clean.test_accuracy == vandalised.test_accuracy
    assert clean.participants == vandalised.participants


def test_dispatcher_scribbling_on_its_copy_of_the_shared_model_does_not_change_fl(
    model, init_params, small_fed, fl_cfg
):
    _, clean = _simulate(model, init_params, small_fed, fl_cfg)
    _, other = _simulate(model, init_params, small_fed, fl_cfg, dispatcher=MutatingNoOpDispatcher())
    for name in clean.final_params:
        assert torch.equal(clean.final_params[name], other.final_params[name]), name


# --- a dispatcher that changes what a client receives ------------------------------------------


def test_dispatched_client_trains_from_its_model_and_is_left_out_of_fedavg(model, init_params, small_fed, fl_cfg):
    decoy = params_of(seeded(lambda: SharedCNN(1, 10, 16), 99))
    dispatcher = SendOther(decoy, {0})
    rec = Recorder()
    _, result = _simulate(model, init_params, small_fed, fl_cfg, seed=1, observers=[rec], dispatcher=dispatcher)
    assert sorted(set(dispatcher.calls)) == [(t, k) for t in range(2) for k in range(4)]
    ends = [rec.rounds[1].global_params, result.final_params]
    for obs, new in zip(rec.rounds, ends):
        assert obs.client_ids == [0, 1, 2, 3]
        assert obs.aggregated == [1, 2, 3]
        for name in decoy:
            assert torch.equal(obs.sent_to(0)[name], decoy[name])
            assert torch.equal(obs.sent_to(2)[name], obs.global_params[name])
        # Client 0's update is relative to the decoy it trained from.
        alone = _train_alone(model, small_fed, 0, decoy, fl_cfg, seed=1, round_=obs.round)
        for name in alone:
            assert_close(obs.update_of(0)[name], alone[name], rtol=1e-5, atol=1e-6)
        # The new shared model averages clients 1..3 only.
        expected = _expected_fedavg(obs.global_params, obs, [1, 2, 3])
        with_victim = _expected_fedavg(obs.global_params, obs, [0, 1, 2, 3])
        for name in new:
            assert_close(new[name], expected[name], rtol=1e-5, atol=1e-6)
        assert not torch.allclose(new["classifier.weight"], with_victim["classifier.weight"], atol=1e-4)


def test_shared_model_stays_put_when_every_client_gets_a_dispatched_model(model, init_params, small_fed, fl_cfg):
    decoy = params_of(seeded(lambda: SharedCNN(1, 10, 16), 99))
    rec = Recorder()
    everyone = SendOther(decoy, {0, 1, 2, 3})
    _, result = _simulate(model, init_params, small_fed, fl_cfg, observers=[rec], dispatcher=everyone)
    assert all(obs.aggregated == [] for obs in rec.rounds)
    for name in init_params:
        assert torch.equal(result.final_params[name], init_params[name])
    assert any(float(v.abs().max()) > 0 for v in rec.rounds[0].updates.values())  # clients did train


def test_mutating_observer_cannot_move_a_shared_model_nobody_updated(model, init_params, small_fed, fl_cfg):
    # With every client dispatched, the observed global model is the very model FL keeps: it must be a copy.
    decoy = params_of(seeded(lambda: SharedCNN(1, 10, 16), 99))
    everyone = SendOther(decoy, {0, 1, 2, 3})
    _, result = _simulate(model, init_params, small_fed, fl_cfg, observers=[Vandal()], dispatcher=everyone)
    for name in init_params:
        assert torch.equal(result.final_params[name], init_params[name]), name


# --- the local training recipe: the learning rate's schedule --------------------------------------


def test_cosine_schedule_gives_each_round_its_learning_rate(fl_cfg):
    cfg = dataclasses.replace(fl_cfg, rounds=40, lr=0.1, lr_schedule="cosine", lr_min_ratio=0.05)
    lrs = [round_lr(cfg, t) for t in range(cfg.rounds)]
    assert lrs[0] == 0.1  # the first round trains at fl.lr
    assert lrs[20] == pytest.approx(0.1 * (0.05 + 0.95 * 0.5))  # half-way: half-way between lr and r * lr
    assert lrs[10] == pytest.approx(0.1 * (0.05 + 0.95 * 0.5 * (1 + 2**-0.5)))
    assert all(a > b for a, b in itertools.pairwise(lrs))  # decays every round
    assert 0.005 < lrs[-1] < 0.0052  # the last round approaches r * lr from above
    constant = dataclasses.replace(cfg, lr_schedule="constant")
    assert {round_lr(constant, t) for t in range(cfg.rounds)} == {0.1}
    assert local_recipe(cfg, 20) == LocalRecipe(lrs[20], cfg.momentum, cfg.local_epochs, cfg.batch_size)


@pytest.mark.parametrize("engine", ["loop", "vmap"])
def test_each_round_trains_with_its_scheduled_rate_and_the_attack_sees_that_recipe(
    model, init_params, small_fed, fl_cfg, monkeypatch, engine
):
    import mganai.fl.server as server

    seen_lrs: list[float] = []
    real = server.ENGINES[engine]

    def spy(model, start, xs, ys, plan, lr, momentum):
        seen_lrs.append(lr)
        return real(model, start, xs, ys, plan, lr, momentum)

    monkeypatch.setitem(server.ENGINES, engine, spy)
    cfg = dataclasses.replace(fl_cfg, rounds=4, engine=engine, lr=0.2, lr_schedule="cosine", lr_min_ratio=0.1)
    rec = Recorder()
    _simulate(model, init_params, small_fed, cfg, observers=[rec])
    assert seen_lrs == [round_lr(cfg, t) for t in range(4)] and len(set(seen_lrs)) == 4
    assert [obs.recipe for obs in rec.rounds] == [local_recipe(cfg, t) for t in range(4)]


# --- client engines ------------------------------------------------------------------------------


def test_make_plan_visits_each_sample_once_per_epoch_and_pads_with_zero_weight():
    sizes, batch, epochs = [10, 3, 7], 4, 2
    plan = make_plan(sizes, batch, epochs, [torch.Generator().manual_seed(i) for i in range(3)])
    assert plan.index.shape == plan.weight.shape == (3, 6, 4)  # ceil(10/4) * 2 steps for the largest
    for k, n in enumerate(sizes):
        real = plan.index[k][plan.weight[k] > 0]
        assert len(real) == n * epochs
        assert torch.bincount(real, minlength=n).tolist() == [epochs] * n
    assert float(plan.weight[1, 2:].sum()) == 0.0  # client 1 runs out after 2 steps: the rest is padding


def test_sgd_step_is_heavy_ball_momentum_like_torch_sgd():
    p0 = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = torch.optim.SGD([p0], lr=0.1, momentum=0.9)
    params, velocity = {"p": p0.detach().clone()}, {"p": torch.zeros(2)}
    for g in (torch.tensor([0.5, 1.0]), torch.tensor([-1.0, 2.0]), torch.tensor([0.25, 0.0])):
        p0.grad = g.clone()
        opt.step()
        params, velocity = sgd_step(params, velocity, {"p": g}, lr=0.1, momentum=0.9)
        assert_close(params["p"], p0.detach(), rtol=0, atol=1e-7)
    assert_close(velocity["p"], torch.tensor([0.9 * (0.9 * 0.5 - 1.0) + 0.25, 0.9 * (0.9 * 1.0 + 2.0)]))


def test_loop_and_vmap_engines_agree_on_clients_of_different_sizes(model, init_params, small_fed):
    clients = small_fed.clients
    sizes = [len(c.y_train) for c in clients]
    gens = [torch.Generator().manual_seed(10 + k) for k in range(len(clients))]
    plan = make_plan(sizes, 8, 2, gens)
    assert float(plan.weight[-1].sum(1).eq(0).sum()) > 0  # the smallest client has pure-padding steps
    start = {n: v.unsqueeze(0).repeat(len(clients), *[1] * v.dim()) for n, v in init_params.items()}
    xs, ys = [c.x_train for c in clients], [c.y_train for c in clients]
    loop = train_loop(model, start, xs, ys, plan, lr=0.05, momentum=0.9)
    vmapped = train_vmap(model, start, xs, ys, plan, lr=0.05, momentum=0.9)
    for name in loop:
        assert_close(vmapped[name], loop[name], rtol=1e-4, atol=1e-5)
        assert not torch.allclose(loop[name], start[name])  # training moved every client


def test_stacked_gradients_are_each_clients_own_gradient(model, init_params, small_fed):
    # The vmap engine's fast path (grouped convs, channels-last, ReLU after the pool) must give
    # every client the gradient torch.func.vmap(grad(...)) gives it, padding weights included.
    k, b = 3, 6
    gen = torch.Generator().manual_seed(5)
    params = {n: v.unsqueeze(0) + 0.05 * torch.randn((k, *v.shape), generator=gen) for n, v in init_params.items()}
    x = torch.stack([c.x_train[:b] for c in small_fed.clients[:k]])
    y = torch.stack([c.y_train[:b] for c in small_fed.clients[:k]])
    w = torch.ones(k, b)
    w[1, 4:] = 0.0  # a part-padded batch
    w[2] = 0.0  # a batch of pure padding: zero gradient
    fast = stacked_grads(model, params, x, y, w)
    assert fast is not None  # SharedCNN is supported, so the engine does not fall back
    reference = vmap(grad(lambda p, xx, yy, ww: weighted_loss(model, p, xx, yy, ww)))(params, x, y, w)
    for name in params:
        assert_close(fast[name], reference[name], rtol=1e-4, atol=1e-6)
        assert fast[name][0].abs().sum() > 0 and fast[name][2].abs().sum() == 0


def test_vmap_engine_does_not_depend_on_chunking_or_the_fast_path(model, init_params, small_fed):
    clients = small_fed.clients
    plan = make_plan([len(c.y_train) for c in clients], 8, 1, [torch.Generator().manual_seed(k) for k in range(4)])
    start = {n: v.unsqueeze(0).repeat(len(clients), *[1] * v.dim()) for n, v in init_params.items()}
    xs, ys = [c.x_train for c in clients], [c.y_train for c in clients]
    whole = train_vmap(model, start, xs, ys, plan, lr=0.05, momentum=0.9)
    chunked = train_vmap(model, start, xs, ys, plan, lr=0.05, momentum=0.9, chunk=3)
    func = train_vmap(model, start, xs, ys, plan, lr=0.05, momentum=0.9, fused=False)
    for name in whole:
        assert_close(chunked[name], whole[name], rtol=1e-5, atol=1e-6)
        assert_close(func[name], whole[name], rtol=1e-4, atol=1e-5)
        assert not torch.allclose(whole[name], start[name])


def test_loop_and_vmap_simulations_end_at_the_same_shared_model(model, init_params, small_fed, fl_cfg):
    cfg = dataclasses.replace(fl_cfg, local_epochs=2, momentum=0.9)
    _, loop = _simulate(model, init_params, small_fed, dataclasses.replace(cfg, engine="loop"))
    _, vmapped = _simulate(model, init_params, small_fed, dataclasses.replace(cfg, engine="vmap"))
    for name in loop.final_params:
        assert_close(vmapped.final_params[name], loop.final_params[name], rtol=1e-4, atol=1e-5)


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_bit_identical_runs(model, init_params, small_fed, fl_cfg):
    cfg = dataclasses.replace(fl_cfg, rounds=3, client_fraction=0.5, engine="vmap")
    _, a = _simulate(model, init_params, small_fed, cfg, seed=3)
    _, b = _simulate(model, init_params, small_fed, cfg, seed=3)
    for name in a.final_params:
        assert torch.equal(a.final_params[name], b.final_params[name]), name
    assert a.test_accuracy == b.test_accuracy
    assert a.participants == b.participants


def test_different_seeds_give_different_runs(model, init_params, small_fed, fl_cfg):
    cfg = dataclasses.replace(fl_cfg, rounds=2, engine="vmap")
    _, a = _simulate(model, init_params, small_fed, cfg, seed=3)
    _, b = _simulate(model, init_params, small_fed, cfg, seed=4)
    assert not torch.equal(a.final_params["classifier.weight"], b.final_params["classifier.weight"])


def test_client_generator_depends_on_seed_round_and_client():
    draws = {
        key: torch.randperm(50, generator=client_generator(*key)).tolist()
        for key in ((0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0))
    }
    assert len({tuple(v) for v in draws.values()}) == 4
    assert torch.randperm(50, generator=client_generator(0, 1, 0)).tolist() == draws[(0, 1, 0)]


def test_stacked_fast_path_declines_models_it_does_not_know(init_params):
    class Other(SharedCNN):
        def forward(self, x):  # not SharedCNN's features -> classifier: the fast path must not assume it
            return self.classifier(self.features(x)) * 2

    x, y, w = torch.zeros(2, 3, 1, 16, 16), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3)
    params = {n: v.unsqueeze(0).repeat(2, *[1] * v.dim()) for n, v in init_params.items()}
    assert stacked_grads(Other(1, 10, 16), params, x, y, w) is None
    assert stacked_grads(SharedCNN(1, 10, 16), params, x, y, w) is not None


def test_final_pool_passes_through_at_its_size_and_pools_otherwise():
    pool = FinalPool(4)
    x = torch.randn(2, 3, 4, 4)
    assert pool(x) is x  # averaging one element is the identity: nothing computed
    big = torch.randn(2, 3, 8, 8)
    assert torch.equal(pool(big), F.adaptive_avg_pool2d(big, 4))
    assert SharedCNN(1, 10, 16)(torch.randn(2, 1, 16, 16)).shape == (2, 10)
