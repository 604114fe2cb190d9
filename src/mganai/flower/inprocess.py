"""A Flower `Grid` that hands each message to a ClientApp in this process: Flower's protocols without Ray.

`mganai flower-sim` runs on Flower's simulation engine; this grid runs the same
ServerApp workflows (e.g. SecAgg+'s four stages, with its real key agreement and
masks) against real ClientApps in one process and in a fixed order, for tests and
benchmarks that need seconds, not a Ray start. Each node keeps its own `Context`
(SecAgg+'s mod keeps its state there), and each message is delivered as a copy, as
if serialised (SecAgg+'s server sends one RecordDict to every node, and the mod
edits what it receives).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from flwr.app import Context, Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run

FIRST_NODE = 100  # node ids FIRST_NODE + k for partition k: ids say nothing about whose data a node holds


class InProcessGrid(Grid):
    """Nodes FIRST_NODE..FIRST_NODE+N-1, node FIRST_NODE+k with `partition-id` k, each answered by `app`.

    Every node's `Context` carries `run_config` (Flower's run config, as `flwr run` would give it)."""

    def __init__(
        self,
        app: Callable[[Message, Context], Message],
        num_nodes: int,
        run_id: int = 1,
        run_config: dict[str, Any] | None = None,
    ):
        self.app = app
        self.contexts = {
            FIRST_NODE + k: Context(run_id, FIRST_NODE + k, {"partition-id": k}, RecordDict(), dict(run_config or {}))
            for k in range(num_nodes)
        }
        self._run = Run.create_empty(run_id)

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None
    ) -> Message:
        return Message(content=content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError("InProcessGrid answers in send_and_receive only")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError("InProcessGrid answers in send_and_receive only")

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Every message to its node's app, in order; the replies."""
        return [self.app(copy.deepcopy(m), self.contexts[m.metadata.dst_node_id]) for m in messages]
