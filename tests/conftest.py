"""Shared fixtures: one small federated dataset per session, and tiny FL settings.

Everything here is sized so the whole suite runs in well under a minute on two
CPU cores: 4 clients at 16x16, and for FL tests a few dozen samples per client.
"""

from __future__ import annotations

import os

import pytest
import torch

from mganai.config import DataConfig, FLConfig
from mganai.data import FederatedDataset, load_dataset
from mganai.data.federated import ClientData
from mganai.fl.model import Params, SharedCNN, params_of, seeded

# Intra-op threads spin-wait: with two threads on two cores shared with any other
# process, a tiny conv step can run 50x slower. One thread keeps the suite fast and steady.
torch.set_num_threads(1)
# And one computation at a time: a run's default `threads` (0) follows OMP_NUM_THREADS, so in-process audits
# run their traces one after the other unless a test asks for `threads = 2`; subprocesses inherit it.
os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_global_state():
    """Audits switch torch to deterministic kernels process-wide; undo that after each test module."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_flush_denormal(False)


# Unequal train sizes, so FedAvg weights and the padding of the vmap engine both matter.
SMALL_TRAIN_SIZES = (40, 29, 23, 17)


@pytest.fixture(scope="session")
def digits4() -> FederatedDataset:
    """The embedded digits over 4 clients at 16x16, seed 0 (IID)."""
    return load_dataset(DataConfig(clients=4, resolution=16), seed=0)


@pytest.fixture(scope="session")
def small_fed(digits4: FederatedDataset) -> FederatedDataset:
    """The same 4 clients cut down to a few dozen training samples each (different per client)."""
    clients = [
        ClientData(c.name, c.x_train[:n].clone(), c.y_train[:n].clone(), c.x_test[:15].clone(), c.y_test[:15].clone())
        for c, n in zip(digits4.clients, SMALL_TRAIN_SIZES)
    ]
    return FederatedDataset("digits-small", clients, digits4.num_classes, digits4.class_names)


@pytest.fixture(scope="session")
def model() -> SharedCNN:
    """The shared architecture; FL code only uses it through functional_call, so one instance is enough."""
    return SharedCNN(1, 10, 16)


@pytest.fixture(scope="session")
def init_params() -> Params:
    return params_of(seeded(lambda: SharedCNN(1, 10, 16), 0))


@pytest.fixture
def fl_cfg() -> FLConfig:
    """Tiny FedAvg: 2 rounds, 1 local epoch, batches of 8, momentum on."""
    return FLConfig(rounds=2, local_epochs=1, batch_size=8, lr=0.05, momentum=0.9, client_fraction=1.0, engine="loop")
