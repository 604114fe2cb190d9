"""Train the GAN attacks of one FL trace side by side: one CPU thread each instead of all threads each.

The passive trace feeds three independent GANs (mganai-passive, no-identity,
class-gan). Each step is many small tensor operations that a second intra-op
thread speeds up little, so on a machine with several cores they finish sooner
in parallel, each single-threaded. Torch releases the GIL inside its
operations, so Python threads suffice.

Every GAN draws from its own generators and its own copy of the shared
architecture, so the results do not depend on how the threads interleave: they
equal training the GANs one after another with one intra-op thread. With
OMP_NUM_THREADS=1 (or one core) they are trained one after another, in this thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from mganai.attack.gan import GanAttack
from mganai.fl.model import Params
from mganai.fl.observers import RoundObservation


class ConcurrentGans:
    """Observer that passes each round to several GanAttacks at once and waits for all of them."""

    def __init__(self, gans: list[GanAttack], workers: int | None = None):
        self.gans = gans
        # The cores torch was told to use: 1 (e.g. OMP_NUM_THREADS=1) keeps everything in this thread.
        self.workers = min(len(gans), workers if workers is not None else torch.get_num_threads())

    def observe(self, obs: RoundObservation) -> None:
        self._each(lambda gan: gan.observe(obs))

    def finish(self, final_params: Params) -> None:
        """Every GAN's extra steps on the final shared model."""
        self._each(lambda gan: gan.finish(final_params))

    def _each(self, work: Callable[[GanAttack], None]) -> None:
        if self.workers <= 1:
            for gan in self.gans:
                work(gan)
            return
        for gan in self.gans:  # the bank's lazily built pool: built here, once, not raced for by the threads
            if gan.bank is not None:
                gan.bank.pool()
        with ThreadPoolExecutor(self.workers) as pool:
            futures = [pool.submit(_single_threaded, work, gan) for gan in self.gans]
            for future in futures:
                future.result()  # re-raises a GAN's error here


def _single_threaded(work: Callable[[GanAttack], None], gan: GanAttack) -> None:
    torch.set_num_threads(1)  # this worker thread only: the caller's setting is its own
    work(gan)
