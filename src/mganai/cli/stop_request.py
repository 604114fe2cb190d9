"""Stopping a run between rounds on SIGINT/SIGTERM, so it can save a checkpoint instead of dying mid-round."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopRequest:
    """SIGINT/SIGTERM set a flag the run checks between rounds (it then saves a checkpoint and stops).

    A second SIGINT leaves at once (KeyboardInterrupt), as Ctrl-C usually does.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> int | None:
        return self.signum

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def installed(self) -> Any:
        import contextlib

        @contextlib.contextmanager
        def scope() -> Any:
            if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
                yield
                return
            old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

        return scope()
