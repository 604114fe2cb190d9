"""The public-data prior (mganai.attack.prior): pretraining learns the public images, every GAN method starts from
it, a class-level method never draws as a federated client, and one prior serves a whole audit."""

from __future__ import annotations

import torch

from mganai.attack.critic import RealismCritic, critic_loss
from mganai.attack.gan import CLASS_GAN, MGANAI, GanAttack
from mganai.attack.prior import PublicPrior, shared_prior
from mganai.data.federated import FederatedDataset
from mganai.fl.server import FedAvgSimulator
from test_attack import _bank, tiny_attack


def _public(digits4: FederatedDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Stand-in public images: one client's held-out digits (the tests only need images of the task's kind)."""
    c = digits4.clients[3]
    return c.x_test, c.y_test


def test_pretraining_teaches_the_critic_the_public_images_and_is_deterministic(digits4):
    x, y = _public(digits4)
    cfg = tiny_attack(prior_pretrain_steps=60)
    untrained = PublicPrior(x, y, 10, 4, cfg, seed=3)
    prior = PublicPrior(x, y, 10, 4, cfg, seed=3)
    g1, critic = prior.pretrained()
    g2, _ = PublicPrior(x, y, 10, 4, cfg, seed=3).pretrained()
    assert prior.seconds > 0
    for (n, a), (_, b) in zip(g1.state_dict().items(), g2.state_dict().items()):
        assert torch.equal(a, b), n  # same seed, same prior
    z, c = torch.randn(len(y), cfg.noise_dim), torch.randint(10, (len(y),))
    generic = torch.full_like(c, 4)
    with torch.no_grad():
        fake = g1(z, c, generic)
        loss_after = critic_loss(critic, x, y, fake, c).item()
        fresh: RealismCritic = untrained.new_critic()
        loss_before = critic_loss(fresh, x, y, untrained.new_generator()(z, c, generic), c).item()
    assert loss_after < loss_before  # the critic learnt to tell public images from the generator's early draws
    # Every federated client's embedding starts at the generic one's.
    emb = g1.client_emb.weight
    assert torch.equal(emb[:4], emb[4].expand(4, -1))


def test_gans_start_from_the_prior_and_a_class_level_gan_ignores_who_is_asked(
    digits4, small_fed, model, init_params, fl_cfg
):
    x, y = _public(digits4)
    cfg = tiny_attack(prior_pretrain_steps=20, gan_final_steps=2)
    prior = PublicPrior(x, y, 10, 4, cfg, seed=0)
    bank = _bank(small_fed, model, init_params, fl_cfg)
    user = GanAttack(MGANAI, model, bank, 10, 4, 0, (1, 16, 16), cfg, seed=0, prior=prior)
    level = GanAttack(CLASS_GAN, model, None, 10, 4, 0, (1, 16, 16), cfg, seed=0, prior=prior)
    start, _ = prior.pretrained()
    for name, w in start.state_dict().items():
        assert torch.equal(user.G.state_dict()[name], w), name
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[user, level]).run()
    classes = torch.arange(10).repeat(2)
    assert torch.equal(level.generate(classes, 7), level.generate(classes, 7, client=2))
    assert not torch.equal(user.generate(classes, 7), user.generate(classes, 7, client=2))
    assert user.generate(classes, 7).shape == (20, 1, 16, 16)
    changed = [n for n, w in start.state_dict().items() if not torch.equal(user.G.state_dict()[n], w)]
    assert changed  # the attack moved the generator away from the prior


def test_one_prior_per_public_set_and_pretraining_settings():
    x, y = torch.rand(8, 1, 16, 16) * 2 - 1, torch.arange(8) % 4
    cfg = tiny_attack(prior_pretrain_steps=5)
    a = shared_prior(x, y, 4, 3, cfg, 0, torch.device("cpu"))
    assert shared_prior(x, y, 4, 3, tiny_attack(prior_pretrain_steps=5, victim=2), 0, torch.device("cpu")) is a
    assert shared_prior(x, y, 4, 3, tiny_attack(prior_pretrain_steps=6), 0, torch.device("cpu")) is not a
    assert shared_prior(x.clone(), y, 4, 3, cfg, 0, torch.device("cpu")) is not a
