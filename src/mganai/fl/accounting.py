"""User-level (ε, δ) of a DP defense, from Opacus' Rényi-DP accountant (not a formula of our own).

One FL round is one Gaussian mechanism on a client's clipped update (sensitivity C),
so the accountant composes the rounds like DP-SGD's steps, with a *client* in the
role of a sample:

- `central-dp`, `client-dp` (noise σC on the sum of m clipped updates): noise
  multiplier σ, sampling rate q = `fl.client_fraction`, `fl.rounds` steps. Adjacent
  federations differ by one client (add/remove), as in DP-FedAvg (McMahan et al.
  2018). Opacus assumes Poisson sampling; our server samples a fixed number of
  clients per round, so for q < 1 the figure is the usual approximation (exact at
  q = 1). The guarantee is against whoever sees the *models* (other clients, the
  public): the server saw the updates before the noise.
- `local-dp` (noise σC on each clipped update): against the server itself. A
  client's update may change arbitrarily with its data (replacement: sensitivity
  2C), so the effective noise multiplier is σ/2; the server knows whom it sampled,
  so there is no amplification by sampling: q = 1 over the rounds the client took part in.

δ defaults to 1/(10·N): below 1/N, so that "leak one client entirely" is not within the guarantee.
"""

from __future__ import annotations

import math
from typing import Any

from mganai.config import DefenseConfig
from mganai.defenses import DEFENSES


def default_delta(num_clients: int) -> float:
    return 1.0 / (10 * num_clients)


def rdp_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε after `steps` sampled Gaussian mechanisms (Opacus' RDP accountant); inf without noise."""
    if noise_multiplier <= 0 or steps <= 0:
        return math.inf if steps > 0 else 0.0
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    return float(accountant.get_epsilon(delta=delta))


def privacy(
    cfg: DefenseConfig, num_clients: int, rounds: int, sample_rate: float, max_participation: int
) -> dict[str, Any]:
    """The `defense` section of metrics.json: name, ε (None where no DP applies or without noise), δ, and how."""
    spec = DEFENSES[cfg.name]
    out: dict[str, Any] = {"name": cfg.name, "epsilon": None, "delta": None, "server_sees": spec.server_sees}
    if spec.dp is None:
        return out
    delta = cfg.dp_delta if cfg.dp_delta is not None else default_delta(num_clients)
    if spec.dp == "central":
        eps = rdp_epsilon(cfg.dp_noise, sample_rate, rounds, delta)
        how = (
            f"Opacus RDP, user-level, noise multiplier {cfg.dp_noise:g}, client sampling rate {sample_rate:g}, "
            f"{rounds} rounds"
        )
        against = "whoever sees the released models (not the server, which saw the updates before the noise)"
    else:
        eps = rdp_epsilon(cfg.dp_noise / 2, 1.0, max_participation, delta)
        how = (
            f"Opacus RDP, per client, noise multiplier {cfg.dp_noise:g}/2 (replacement: sensitivity 2C), "
            f"no sampling amplification, {max_participation} rounds taken part in"
        )
        against = "the server itself"
    out.update(
        epsilon=eps if math.isfinite(eps) else None,
        delta=delta,
        noise_multiplier=cfg.dp_noise,
        clipping_norm=cfg.dp_clip,
        accountant=how,
        against=against,
    )
    if not math.isfinite(eps):
        out["note"] = "no noise (σ = 0): clipping only, no DP guarantee"
    return out
