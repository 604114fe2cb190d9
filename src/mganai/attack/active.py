"""Active mGAN-AI's isolation: the victim receives a model built from its own updates only.

From `start_round` on, the server branches a private copy of the shared model for
the victim and advances it with the victim's updates alone; the victim's updates
no longer enter the shared model (they are relative to a different base). The
victim's updates then reflect its own data more sharply, at a cost to its accuracy.
"""

from __future__ import annotations

from mganai.fl.aggregate import apply_update
from mganai.fl.model import Params, clone_params
from mganai.fl.observers import RoundObservation


class VictimIsolation:
    """A `ModelDispatcher` (changes FL) that is also an observer of the victim's updates."""

    def __init__(self, victim: int, start_round: int):
        self.victim, self.start_round = victim, start_round
        self.isolated: Params | None = None
        self.sent_rounds: list[int] = []

    def model_for(self, round_: int, client: int, global_params: Params) -> Params | None:
        if client != self.victim or round_ < self.start_round:
            return None
        if self.isolated is None:
            self.isolated = clone_params(global_params)
        self.sent_rounds.append(round_)
        return clone_params(self.isolated)

    def observe(self, obs: RoundObservation) -> None:
        if self.isolated is not None and obs.position(self.victim) is not None and self.victim not in obs.aggregated:
            self.isolated = apply_update(self.isolated, obs.update_of(self.victim))
