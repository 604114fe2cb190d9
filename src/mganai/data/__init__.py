"""Data: loaders that return a `FederatedDataset` of clients with their own private data.

`data.dataset` names the source; the registry `mganai.datasets` lists them all
(loader, default resolution, whether the clients come from the data) and calls
the loaders in this package.
"""

from __future__ import annotations

from mganai.data.federated import ClientData, FederatedDataset
from mganai.data.load import check_victim, check_victim_early, load_dataset, resolve_victim
from mganai.errors import DataError

__all__ = [
    "ClientData",
    "DataError",
    "FederatedDataset",
    "check_victim",
    "check_victim_early",
    "load_dataset",
    "resolve_victim",
]
