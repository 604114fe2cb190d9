"""Active mGAN-AI's isolation: the victim receives a model built from its own updates only.

From `start_round` on, the server branches a private copy of the shared model for
the victim and advances it with the victim's updates alone; the victim's updates
no longer enter the shared model (they are relative to a different base). The
victim's updates then reflect its own data more sharply, at a cost to its accuracy.

Left alone, the private copy fits the victim's few images within a few rounds and
its updates vanish (`bench/isolation_norms.py` measures them): nothing is left to
invert. With `rebase_every` K > 0
the copy restarts from the current shared model every K rounds; that model has
seen none of the victim's data since `start_round`, so the victim's next updates
are large and point from the federation's model towards its own data.
"""

from __future__ import annotations

from mganai.checkpoint import Checkpointed
from mganai.fl.aggregate import apply_update
from mganai.fl.model import Params, clone_params
from mganai.fl.observers import RoundObservation


class VictimIsolation(Checkpointed):
    """A `ModelDispatcher` (changes FL) that is also an observer of the victim's updates."""

    STATE = ("isolated", "sent_rounds")
    STRUCTURE = ("victim", "start_round", "rebase_every")

    def __init__(self, victim: int, start_round: int, rebase_every: int = 0):
        self.victim, self.start_round, self.rebase_every = victim, start_round, rebase_every
        self.isolated: Params | None = None
        self.sent_rounds: list[int] = []

    def model_for(self, round_: int, client: int, global_params: Params) -> Params | None:
        if client != self.victim or round_ < self.start_round:
            return None
        rebase = self.rebase_every > 0 and (round_ - self.start_round) % self.rebase_every == 0
        if self.isolated is None or rebase:
            self.isolated = clone_params(global_params)
        self.sent_rounds.append(round_)
        return clone_params(self.isolated)

    def observe(self, obs: RoundObservation) -> None:
        if self.isolated is not None and obs.position(self.victim) is not None and self.victim not in obs.aggregated:
            self.isolated = apply_update(self.isolated, obs.update_of(self.victim))
