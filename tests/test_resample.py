"""Growing a federation for benchmarks: client k resamples base client k mod B."""

from __future__ import annotations

import torch

from mganai.data.resample import resampled_federation


def test_resampled_clients_draw_from_their_base_writer_only(small_fed):
    grown = resampled_federation(small_fed, 10, seed=0)
    assert grown.num_clients == 10 and grown.num_classes == small_fed.num_classes
    for k, client in enumerate(grown.clients):
        base = small_fed.clients[k % 4]
        assert len(client.y_train) == len(base.y_train)
        # every image is one of the base writer's, with its label
        match = (client.x_train.flatten(1)[:, None] == base.x_train.flatten(1)[None]).all(-1)
        assert match.any(1).all()
        assert torch.equal(client.y_train, base.y_train[match.int().argmax(1)])
        assert len(client.y_test) == (len(base.y_test) if k < 4 else 0)  # held-out set stays the base's
    assert not torch.equal(grown.clients[1].x_train, grown.clients[5].x_train)  # same writer, new draw
    again = resampled_federation(small_fed, 10, seed=0)
    assert all(torch.equal(a.x_train, b.x_train) for a, b in zip(grown.clients, again.clients))
