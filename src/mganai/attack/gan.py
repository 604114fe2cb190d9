"""The GAN attacks: mGAN-AI and its class-level relatives, trained round by round on the server.

One trainer covers three recipes that differ only in which discriminator terms
the generator must satisfy:

- mGAN-AI: real/fake on representatives + category + client identity (user-level);
- no-identity: the same without the identity term (and a class-only generator);
- class-gan (Hitaj-style): the shared model's category term only, no representatives.

Each round the discriminator's trunk is reloaded from the shared model M_t, then
discriminator and generator take `gan_steps_per_round` alternating steps.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, vmap

from mganai.attack.augment import random_affine
from mganai.attack.bank import RepresentativeBank
from mganai.attack.critic import critic_loss, generator_realism
from mganai.attack.discriminator import MultiTaskDiscriminator
from mganai.attack.generator import ConditionalGenerator
from mganai.attack.prior import PublicPrior, critic_optimizer
from mganai.attack.representatives import labels_for, present_classes, update_match_loss
from mganai.checkpoint import Checkpointed
from mganai.config import AttackConfig
from mganai.device import module_device
from mganai.fl.model import Params, SharedCNN, seeded
from mganai.fl.observers import RoundObservation


@dataclass(frozen=True)
class Recipe:
    """Which terms the generator is trained on."""

    realism: bool  # real/fake against representatives
    identity: bool  # client identity (generator conditioned on the client)
    update_match: bool = False  # generated batches must reproduce each client's update


MGANAI = Recipe(realism=True, identity=True, update_match=True)
NO_IDENTITY = Recipe(realism=True, identity=False)
CLASS_GAN = Recipe(realism=False, identity=False)
RECIPES = {"mganai": MGANAI, "no-identity": NO_IDENTITY, "class-gan": CLASS_GAN}  # by `mganai.methods` recipe name


class GanAttack(Checkpointed):
    """Observer that trains a conditional generator against a multi-task discriminator."""

    STATE = ("G", "D", "opt_g", "opt_d", "rng", "rounds", "local_models", "steps_done", "critic", "opt_critic")
    # `shared` is an architecture copy used through functional_call (its weights live in D's state).
    STRUCTURE = (
        "recipe",
        "bank",
        "cfg",
        "device",
        "num_classes",
        "num_clients",
        "victim",
        "G_shape",
        "shared",
        "prior",
    )

    def __init__(
        self,
        recipe: Recipe,
        shared: SharedCNN,
        bank: RepresentativeBank | None,
        num_classes: int,
        num_clients: int,
        victim: int,
        image_shape: tuple[int, int, int],
        cfg: AttackConfig,
        seed: int,
        prior: PublicPrior | None = None,
    ):
        if recipe.realism and bank is None and prior is None:
            raise ValueError("a recipe with realism needs a representative bank")
        self.recipe, self.bank, self.cfg = recipe, bank, cfg
        # Its own copy of the architecture: functional_call swaps a module's weights in place, and
        # GANs may train side by side in threads (attack/concurrent.py).
        shared = copy.deepcopy(shared)
        self.device = module_device(shared)  # the GAN trains where the shared model lives; draws come from the CPU
        self.num_classes, self.num_clients, self.victim = num_classes, num_clients, victim
        ids = num_clients if recipe.identity else 0
        self.prior = prior
        self.critic: torch.nn.Module | None = None
        self.opt_critic: torch.optim.Optimizer | None = None
        if prior is not None:
            # The public prior: start from the generator pretrained on public data, keep its critic judging.
            # Every recipe's generator is the prior's (client embeddings included); a class-level recipe always
            # asks it as the generic client, so it never learns a federated client's style.
            self.G, self.critic = prior.pretrained()
            self.opt_critic = critic_optimizer(self.critic)
        else:
            self.G = seeded(
                lambda: ConditionalGenerator(cfg.noise_dim, num_classes, ids, image_shape, smooth=cfg.smooth_output),
                seed + 101,
            ).to(self.device)
        self.G_shape = image_shape
        self.D = seeded(lambda: MultiTaskDiscriminator(shared, ids), seed + 202).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.gan_lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.head_parameters(), lr=cfg.gan_lr, betas=(0.5, 0.999))
        self.rng = torch.Generator().manual_seed(seed * 131 + 7)
        self.shared = shared
        self.rounds: deque[tuple[Params, Params, Tensor, Tensor]] = deque(maxlen=cfg.rep_pool_rounds)
        self.local_models: deque[Params] = deque(maxlen=cfg.rep_pool_rounds)
        self.steps_done = 0

    def observe(self, obs: RoundObservation) -> None:
        if obs.round < self.cfg.start_round:
            return
        if self.cfg.class_ensemble:
            self.local_models.append({n: obs.sent[n] + obs.updates[n] for n in obs.sent})
        if self.recipe.update_match:
            labels = labels_for(present_classes(obs.updates), self.cfg.match_batch)
            self.rounds.append((obs.sent, obs.updates, labels, torch.tensor(obs.client_ids)))
        self.train(obs.global_params, self.cfg.gan_steps_per_round)

    def finish(self, final_params: Params) -> None:
        """Extra steps on the final shared model, once FL has ended."""
        self.train(final_params, self.cfg.gan_final_steps)

    def _generic(self, c: Tensor) -> Tensor | None:
        """The client id a class-level recipe draws as: none, or the prior's generic one."""
        return None if self.prior is None else torch.full_like(c, self.num_clients)

    def _conditions(self, n: int) -> tuple[Tensor, Tensor, Tensor | None]:
        z = torch.randn(n, self.cfg.noise_dim, generator=self.rng).to(self.device)
        c = torch.randint(self.num_classes, (n,), generator=self.rng).to(self.device)
        if not self.recipe.identity:
            return z, c, self._generic(c)
        k = torch.randint(self.num_clients, (n,), generator=self.rng)
        # Half of every batch is generated as the victim: that is the output we want best.
        k[: n // 2] = self.victim
        return z, c, k.to(self.device)

    def train(self, shared_params: Params, steps: int) -> None:
        """`steps` alternating D/G steps with the discriminator trunk taken from `shared_params`."""
        reps = self.recipe.realism and self.prior is None  # the paper's realism: representatives are "real"
        if steps == 0 or (reps and self.bank is not None and len(self.bank) == 0):
            return
        self.D.load_shared(shared_params)
        self.G.train()
        n = self.cfg.gan_batch
        a = self.cfg
        for _ in range(steps):
            z, c, k = self._conditions(n)
            fake = self._augment(self.G(z, c, k))
            if reps:
                self._d_step(fake.detach(), n)
            if self.prior is not None:
                loss_g = a.prior_class_weight * self._class_loss(fake, c)
                # Identity comes from update matching alone: the representatives the identity head would learn
                # from are noise next to the public images (docs/experiments.md, 2026-12-03).
                loss_g = loss_g + a.prior_realism_weight * self._critic_term(fake, c)
            else:
                loss_g = self.cfg.class_weight * self._class_loss(fake, c)
            if reps:
                real_logit, id_logits = self.D(fake)
                realism = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                loss_g = loss_g + self.cfg.realism_weight * realism
                if self.recipe.identity and id_logits is not None and k is not None:
                    loss_g = loss_g + self.cfg.identity_weight * F.cross_entropy(id_logits, k)
            match_weight = a.prior_match_weight if self.prior is not None else a.match_weight
            if self.recipe.update_match and self.rounds and match_weight > 0:
                loss_g = loss_g + match_weight * self._match_loss()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            self.steps_done += 1

    def _augment(self, x: Tensor) -> Tensor:
        """A random small shift, turn and zoom per image: only features that survive it count."""
        a = self.cfg
        return random_affine(x, self.rng, a.jitter, a.augment_rotate, a.augment_scale)

    def _class_loss(self, x: Tensor, c: Tensor) -> Tensor:
        """Class c for the shared model and, averaged, for every client's local model of a kept round."""
        loss = F.cross_entropy(self.D.category(x), c)
        if not self.cfg.class_ensemble or not self.local_models:
            return loss
        local = self.local_models[int(torch.randint(len(self.local_models), (1,), generator=self.rng))]
        k = len(next(iter(local.values())))
        if 0 < self.cfg.ensemble_size < k:  # a random few per step: the same objective in expectation, cheaper
            pick = torch.randperm(k, generator=self.rng)[: self.cfg.ensemble_size]
            local = {n: v[pick] for n, v in local.items()}
        logits = vmap(lambda p: functional_call(self.shared, p, (x,)))(local)  # [K, B, C]
        return loss + F.cross_entropy(logits.flatten(0, 1), c.repeat(len(logits)))

    def _match_loss(self) -> Tensor:
        """Generate a batch per client of a kept round; its gradient must point like that client's update."""
        sent, updates, labels, ids = self.rounds[int(torch.randint(len(self.rounds), (1,), generator=self.rng))]
        if 0 < self.cfg.match_clients < len(ids):  # the victim (if it took part) and a random few others
            order = torch.randperm(len(ids), generator=self.rng)
            order = torch.cat([order[ids[order] == self.victim], order[ids[order] != self.victim]])
            pick = order[: self.cfg.match_clients]
            sent, updates = {n: v[pick] for n, v in sent.items()}, {n: v[pick] for n, v in updates.items()}
            labels, ids = labels[pick], ids[pick]
        k, r = labels.shape
        z = torch.randn(k * r, self.cfg.noise_dim, generator=self.rng).to(self.device)
        ids = ids.to(self.device)
        images = self.G(z, labels.flatten(), ids.repeat_interleave(r)).view(k, r, *self.G_shape)
        per_client = update_match_loss(self.shared, sent, updates, images, labels)
        victim = (ids == self.victim).float()
        # The victim's term counts as much as all the others together: its data is the target.
        return per_client.mean() + (per_client * victim).sum()

    def _critic_term(self, fake: Tensor, c: Tensor) -> Tensor:
        """One critic step (public images real, `fake` generated), then the generator's realism loss."""
        assert self.prior is not None and self.critic is not None and self.opt_critic is not None
        real, real_y = self.prior.sample(len(fake), self.rng)
        loss = critic_loss(self.critic, self._augment(real), real_y, fake, c)  # type: ignore[arg-type]
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_critic.step()
        return generator_realism(self.critic, fake, c)  # type: ignore[arg-type]

    def _d_step(self, fake: Tensor, n: int) -> None:
        assert self.bank is not None
        x, _, owner = self.bank.pool()
        pick = torch.randint(len(x), (n,), generator=self.rng)
        real_logit, id_logits = self.D(self._augment(x[pick]))
        fake_logit, _ = self.D(fake)
        loss = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
        loss = loss + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        if self.recipe.identity and id_logits is not None:
            loss = loss + F.cross_entropy(id_logits, owner[pick])
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()

    @torch.no_grad()
    def generate(self, classes: Tensor, seed: int, client: int | None = None) -> Tensor:
        """Samples 'as client `client` (default: the victim), class c' for each entry of `classes`, on the CPU.
        A class-level recipe draws the same samples whoever is asked for."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(len(classes), self.cfg.noise_dim, generator=gen).to(self.device)
        classes = classes.to(self.device)
        who = self.victim if client is None else client
        k = torch.full_like(classes, who) if self.recipe.identity else self._generic(classes)
        self.G.eval()
        out = self.G(z, classes, k)
        self.G.train()
        return out.cpu()
