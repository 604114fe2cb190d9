"""The attack on tiny configs: labels from updates, batched inversion, GAN training, passive and active."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mganai.attack.active import VictimIsolation
from mganai.attack.augment import random_affine
from mganai.attack.bank import RepresentativeBank
from mganai.attack.concurrent import ConcurrentGans
from mganai.attack.gan import CLASS_GAN, MGANAI, NO_IDENTITY, GanAttack
from mganai.attack.generator import ConditionalGenerator
from mganai.attack.representatives import invert_updates, labels_for, present_classes, update_match_loss
from mganai.config import AttackConfig, FLConfig
from mganai.data.federated import ClientData, FederatedDataset
from mganai.fl.server import FedAvgSimulator


class Recorder:
    def __init__(self):
        self.seen = []

    def observe(self, obs):
        self.seen.append(obs)


def tiny_attack(**kw) -> AttackConfig:
    base = dict(
        start_round=0,
        reps_per_client=4,
        inversion_steps=5,
        gan_steps_per_round=3,
        gan_final_steps=0,
        gan_batch=8,
        match_batch=2,
        rep_pool_rounds=2,
    )
    base.update(kw)
    return AttackConfig(**base)


def _without_classes(data: FederatedDataset, client: int, drop: set[int]) -> FederatedDataset:
    clients = list(data.clients)
    c = clients[client]
    keep = torch.tensor([int(y) not in drop for y in c.y_train])
    clients[client] = ClientData(c.name, c.x_train[keep], c.y_train[keep], c.x_test, c.y_test)
    return FederatedDataset(data.name, clients, data.num_classes, data.class_names)


def test_present_classes_are_read_from_the_update(small_fed, model, init_params, fl_cfg):
    data = _without_classes(small_fed, 1, {3, 7})
    rec = Recorder()
    FedAvgSimulator(model, init_params, data, fl_cfg, seed=0, observers=[rec]).run()
    present = present_classes(rec.seen[-1].updates)
    found = total = 0
    for k, client in enumerate(data.clients):
        truth = torch.zeros(10, dtype=torch.bool)
        truth[client.y_train.unique()] = True
        assert not (present[k] & ~truth).any(), f"client {k}: an absent class was reported"
        found += int((present[k] & truth).sum())
        total += int(truth.sum())
    assert not present[1, 3] and not present[1, 7]
    assert found / total >= 0.8, f"found {found} of {total} held classes"


def test_labels_cycle_over_present_classes():
    present = torch.tensor([[True, False, True], [False, True, False]])
    assert labels_for(present, 4).tolist() == [[0, 2, 0, 2], [1, 1, 1, 1]]


def test_batched_inversion_reduces_the_update_mismatch(small_fed, model, init_params, fl_cfg):
    rec = Recorder()
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[rec]).run()
    obs = rec.seen[0]
    labels = labels_for(present_classes(obs.updates), 4)
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand((4, 4, 1, 16, 16), generator=gen) * 2 - 1
    before = update_match_loss(model, obs.sent, obs.updates, noise, labels)
    reps = invert_updates(model, obs.sent, obs.updates, labels, (1, 16, 16), 40, 0.1, 0.0, gen)
    after = update_match_loss(model, obs.sent, obs.updates, reps, labels)
    assert reps.shape == (4, 4, 1, 16, 16) and reps.abs().max() <= 1
    assert (after < before).all(), (before, after)


def test_identity_head_learns_clients_from_representatives(small_fed, model, init_params, fl_cfg):
    cfg = tiny_attack(inversion_steps=20)
    bank = RepresentativeBank(model, (1, 16, 16), 4, cfg, seed=0)
    rec = Recorder()
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[bank, rec]).run()
    gan = GanAttack(MGANAI, model, bank, 10, 4, 0, (1, 16, 16), cfg, seed=0)
    gan.D.load_shared(rec.seen[-1].global_params)
    x, _, owner = bank.pool()
    opt = torch.optim.Adam(gan.D.head_parameters(), lr=1e-2)
    for _ in range(150):
        loss = F.cross_entropy(gan.D(x)[1], owner)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = (gan.D(x)[1].argmax(1) == owner).float().mean()
    assert acc > 0.9  # chance is 0.25


def test_generator_class_loss_decreases(small_fed, model, init_params, fl_cfg):
    cfg = tiny_attack()
    rec = Recorder()
    FedAvgSimulator(model, init_params, small_fed, FLConfig(rounds=3, batch_size=8, engine="loop"), 0, [rec]).run()
    gan = GanAttack(CLASS_GAN, model, None, 10, 4, 0, (1, 16, 16), cfg, seed=0)
    classes = torch.arange(10).repeat(4)

    def class_loss():
        gan.D.load_shared(rec.seen[-1].global_params)
        return float(F.cross_entropy(gan.D.category(gan.generate(classes, seed=1)), classes))

    before = class_loss()
    gan.train(rec.seen[-1].global_params, 60)
    assert class_loss() < before


def test_generated_samples_have_the_data_shape(small_fed, model, init_params, fl_cfg):
    cfg = tiny_attack()
    bank = RepresentativeBank(model, (1, 16, 16), 4, cfg, seed=0)
    gans = [GanAttack(r, model, bank, 10, 4, 2, (1, 16, 16), cfg, seed=0) for r in (MGANAI, NO_IDENTITY, CLASS_GAN)]
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[bank, *gans]).run()
    for gan in gans:
        out = gan.generate(torch.arange(10), seed=3)
        assert out.shape == (10, 1, 16, 16) and out.abs().max() <= 1 and gan.steps_done == 2 * cfg.gan_steps_per_round


def test_passive_attack_leaves_fl_bit_identical(small_fed, model, init_params, fl_cfg):
    plain = FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0).run()
    cfg = tiny_attack()
    bank = RepresentativeBank(model, (1, 16, 16), 4, cfg, seed=0)
    gans = [GanAttack(r, model, bank, 10, 4, 0, (1, 16, 16), cfg, seed=0) for r in (MGANAI, NO_IDENTITY, CLASS_GAN)]
    attacked = FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[bank, *gans]).run()
    assert all(gan.steps_done > 0 for gan in gans)
    for name in plain.final_params:
        assert torch.equal(plain.final_params[name], attacked.final_params[name]), name
    assert plain.test_accuracy == attacked.test_accuracy


def test_active_isolation_sends_the_victim_its_own_model(small_fed, model, init_params):
    cfg = FLConfig(rounds=3, local_epochs=1, batch_size=8, lr=0.05, engine="loop")
    iso = VictimIsolation(victim=2, start_round=1)
    rec = Recorder()
    FedAvgSimulator(model, init_params, small_fed, cfg, seed=0, observers=[iso, rec], dispatcher=iso).run()
    r0, r1, r2 = rec.seen
    assert 2 in r0.aggregated  # before isolation the victim is a normal client
    # Round 1: the victim gets the shared model it branched from; round 2: that plus its own round-1 update only.
    for name in r1.global_params:
        assert torch.equal(r1.sent_to(2)[name], r1.global_params[name])
        expected = r1.global_params[name] + r1.update_of(2)[name]
        assert torch.equal(r2.sent_to(2)[name], expected)
        assert not torch.equal(r2.sent_to(2)[name], r2.global_params[name])
        assert torch.equal(r2.sent_to(0)[name], r2.global_params[name])
    assert 2 not in r1.aggregated and 2 not in r2.aggregated
    assert iso.sent_rounds == [1, 2]


def test_active_isolation_rebases_the_victims_model_on_the_shared_one_every_k_rounds(small_fed, model, init_params):
    cfg = FLConfig(rounds=5, local_epochs=1, batch_size=8, lr=0.05, engine="loop")
    iso = VictimIsolation(victim=2, start_round=1, rebase_every=2)
    rec = Recorder()
    FedAvgSimulator(model, init_params, small_fed, cfg, seed=0, observers=[iso, rec], dispatcher=iso).run()
    r = rec.seen
    for name in r[0].global_params:
        for t in (1, 3):  # rebased: that round's shared model (no victim update in it since round 1)
            assert torch.equal(r[t].sent_to(2)[name], r[t].global_params[name]), (t, name)
        for t in (2, 4):  # in between: the last model it was sent plus its own update only
            expected = r[t - 1].sent_to(2)[name] + r[t - 1].update_of(2)[name]
            assert torch.equal(r[t].sent_to(2)[name], expected), (t, name)
            assert not torch.equal(r[t].sent_to(2)[name], r[t].global_params[name])
    assert all(2 not in r[t].aggregated for t in range(1, 5))


def test_smooth_generator_draws_at_half_resolution_for_every_supported_side():
    for side in (16, 28, 32, 64):
        g = ConditionalGenerator(8, 10, 3, (1, side, side), width=8, smooth=True)
        out = g(torch.randn(4, 8), torch.arange(4), torch.tensor([0, 1, 2, 0]))
        assert out.shape == (4, 1, side, side) and out.abs().max() <= 1
        assert g.drawn < side  # drawn smaller, then upsampled: no pixel-level pattern to exploit
        sharp = ConditionalGenerator(8, 10, 3, (3, side, side), width=8, smooth=False)
        assert sharp(torch.randn(2, 8), torch.arange(2), torch.tensor([0, 1])).shape == (2, 3, side, side)


def test_class_ensemble_keeps_every_clients_local_model(small_fed, model, init_params, fl_cfg):
    cfg = tiny_attack(class_ensemble=True)
    gan = GanAttack(CLASS_GAN, model, None, 10, 4, 0, (1, 16, 16), cfg, seed=0)
    rec = Recorder()
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[gan, rec]).run()
    last = rec.seen[-1]
    assert len(gan.local_models) == min(len(rec.seen), cfg.rep_pool_rounds)
    for name, value in gan.local_models[-1].items():
        assert torch.equal(value, last.sent[name] + last.updates[name])
    x = gan.generate(torch.arange(10), seed=0)
    # The ensemble term adds the local models' class loss on top of the shared model's.
    assert gan._class_loss(x, torch.arange(10)) > F.cross_entropy(gan.D.category(x), torch.arange(10))


def test_bank_inverts_every_kth_round_only(small_fed, model, init_params, fl_cfg):
    cfg = tiny_attack(start_round=1, invert_every=2, rep_pool_rounds=10)
    bank = RepresentativeBank(model, (1, 16, 16), 4, cfg, seed=0)
    FedAvgSimulator(model, init_params, small_fed, FLConfig(rounds=6, batch_size=8), 0, [bank]).run()
    # Rounds 1, 3 and 5 are inverted: three rounds of reps_per_client images per client.
    assert [len(h) for h in bank.history] == [3, 3, 3, 3]
    assert len(bank.client(0)[0]) == 3 * cfg.reps_per_client


def _gan_after_fl(small_fed, model, init_params, fl_cfg, recipe, **kw):
    gan = GanAttack(
        recipe,
        model,
        None if recipe is CLASS_GAN else _bank(small_fed, model, init_params, fl_cfg),
        10,
        4,
        0,
        (1, 16, 16),
        tiny_attack(**kw),
        seed=0,
    )
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[gan]).run()
    return gan


def _bank(small_fed, model, init_params, fl_cfg):
    bank = RepresentativeBank(model, (1, 16, 16), 4, tiny_attack(), seed=0)
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[bank]).run()
    return bank


def test_class_ensemble_subset_asks_that_many_local_models(small_fed, model, init_params, fl_cfg, monkeypatch):
    gan = _gan_after_fl(small_fed, model, init_params, fl_cfg, CLASS_GAN, ensemble_size=2)
    asked = []

    def counting_vmap(f):
        def batched(p):
            asked.append(len(p["classifier.bias"]))
            return torch.stack([f({n: v[i] for n, v in p.items()}) for i in range(asked[-1])])

        return batched

    monkeypatch.setattr("mganai.attack.gan.vmap", counting_vmap)
    loss = gan._class_loss(gan.generate(torch.arange(10), seed=0), torch.arange(10))
    assert asked == [2] and torch.isfinite(loss)  # 2 of the round's 4 local models


def test_update_match_subset_always_includes_the_victim(small_fed, model, init_params, fl_cfg, monkeypatch):
    gan = _gan_after_fl(small_fed, model, init_params, fl_cfg, MGANAI, match_clients=2)
    seen = []

    def spy(shared, sent, updates, images, labels):
        seen.append(images.shape[0])
        return torch.ones(images.shape[0], requires_grad=True)

    monkeypatch.setattr("mganai.attack.gan.update_match_loss", spy)
    picked = []
    original = gan.G.forward

    def forward(z, c, k=None):
        if k is not None and len(k) == 2 * gan.cfg.match_batch:
            picked.append(sorted(set(k.tolist())))
        return original(z, c, k)

    gan.G.forward = forward
    for _ in range(5):
        gan._match_loss()
    assert seen == [2] * 5
    assert all(len(p) == 2 and gan.victim in p for p in picked), picked


def test_generator_upsamples_without_transposed_convolutions():
    """Resize-convolution: transposed convolutions leave checkerboard patterns a classifier rewards."""
    g = ConditionalGenerator(8, 3, 0, (1, 16, 16), smooth=True)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert any(isinstance(m, torch.nn.Upsample) for m in g.modules())
    assert g(torch.randn(4, 8), torch.tensor([0, 1, 2, 0])).shape == (4, 1, 16, 16)


def test_random_affine_moves_shapes_only_as_far_as_asked():
    x = -torch.ones(64, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1.0  # a bright square in the middle of a black image
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(random_affine(x, gen, 0, 0.0, 0.0), x)
    y = random_affine(x, torch.Generator().manual_seed(0), 2, 10.0, 0.1)
    assert torch.equal(y, random_affine(x, torch.Generator().manual_seed(0), 2, 10.0, 0.1))  # seeded
    assert y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5
    assert not torch.allclose(y[0], y[1])  # drawn per image

    def centre(im: torch.Tensor) -> torch.Tensor:
        w = (im[:, 0] + 1).clamp_min(0)
        grid = torch.arange(16.0)
        return torch.stack([(w.sum(2) * grid).sum(1), (w.sum(1) * grid).sum(1)], 1) / w.sum((1, 2)).unsqueeze(1)

    moved = (centre(y) - centre(x)).abs()
    assert moved.max() <= 2 * 1.1 + 0.05 and moved.max() > 0.5  # shifted by up to 2 px (times the zoom)
    z = x.clone().requires_grad_(True)
    random_affine(z, gen, 1, 5.0, 0.0).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # differentiable: the generator learns through it


def _trained_gans(small_fed, model, init_params, fl_cfg, workers: int) -> list[GanAttack]:
    cfg = tiny_attack()
    bank = RepresentativeBank(model, (1, 16, 16), 4, cfg, seed=0)
    gans = [GanAttack(r, model, bank, 10, 4, 0, (1, 16, 16), cfg, seed=0) for r in (MGANAI, NO_IDENTITY, CLASS_GAN)]
    group = ConcurrentGans(gans, workers)
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[bank, group]).run()
    group.finish(init_params)
    return gans


def test_gans_trained_side_by_side_equal_gans_trained_one_after_another(small_fed, model, init_params, fl_cfg):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each worker thread uses
    try:
        one_by_one = _trained_gans(small_fed, model, init_params, fl_cfg, workers=1)
    finally:
        torch.set_num_threads(threads)
    side_by_side = _trained_gans(small_fed, model, init_params, fl_cfg, workers=3)
    for a, b in zip(one_by_one, side_by_side):
        assert a.steps_done == b.steps_done > 0
        for (name, p), q in zip(a.G.named_parameters(), b.G.parameters()):
            assert torch.equal(p, q), name
    assert torch.get_num_threads() == threads  # the workers' single thread did not leak into the caller


def test_a_failing_gan_fails_the_group(small_fed, model, init_params, fl_cfg, monkeypatch):
    cfg = tiny_attack()
    gans = [GanAttack(CLASS_GAN, model, None, 10, 4, 0, (1, 16, 16), cfg, seed=s) for s in (0, 1)]

    def broken(shared_params, steps):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(gans[1], "train", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        ConcurrentGans(gans, workers=2).finish(init_params)
