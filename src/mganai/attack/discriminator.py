"""The multi-task discriminator: the shared model's feature layers with three heads.

- `real`: real (a representative) vs generated;
- `category`: the shared model's own classifier, frozen, on the shared model's features;
- `identity`: which of the N clients a sample comes from.

`load_shared` copies the feature layers of the current shared model M_t into the
trunk every round, so the discriminator starts from what the federation learned.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mganai.fl.model import Params, SharedCNN


class MultiTaskDiscriminator(nn.Module):
    """Trunk = a copy of the shared model's `features`; heads for real/fake and client identity."""

    def __init__(self, shared: SharedCNN, num_clients: int):
        super().__init__()
        self.shared = shared  # architecture only; weights come in through `load_shared`
        self.trunk = copy.deepcopy(shared.features)
        self.real = nn.Linear(shared.feature_dim, 1)
        self.identity = nn.Linear(shared.feature_dim, num_clients) if num_clients else None
        self.category_params: Params = {}

    @torch.no_grad()
    def load_shared(self, params: Params) -> None:
        """Take the trunk from the shared model M_t and keep M_t for the category head."""
        for name, p in self.trunk.named_parameters():
            p.copy_(params[f"features.{name}"])
        self.category_params = {k: v.detach() for k, v in params.items()}

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Real/fake logit [B] and identity logits [B, N] (None without an identity head)."""
        h = self.trunk(x)
        return self.real(h).squeeze(1), (self.identity(h) if self.identity is not None else None)

    def category(self, x: Tensor) -> Tensor:
        """The shared model's class logits (gradients flow to x only)."""
        return functional_call(self.shared, self.category_params, (x,))

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("shared.")]
