"""Durable state of the service: one SQLite database, one store per concept.

::

    Store(state_dir)             the facade the app, the CLI and tests construct
      .database    Database      connection, schema, transaction(), call() on its thread
                                 (thread.py: requests first, bulk work after)
      .identities  IdentityStore users and token hashes (tokens in state_dir/tokens/)
      .groups      GroupStore    groups and their members
      .functions   FunctionStore registered functions, stored verbatim
      .endpoints   EndpointStore registrations, stop flags, last heartbeats
      .tasks       TaskStore     submit, claim, results, task documents, purge
      .leases      LeaseStore    renew, expire and release the leases of claimed tasks

All methods are synchronous: the service runs whole service functions, one transaction per
request, on the database's own thread (``Database.call``), never on its event loop. The rules
that combine them (who may do what, what a re-registration releases, who to wake) are the
service functions' (``actions/``), not the stores'. Storage failures are ``StorageError``s
(``database.py``): a full disk, or a database file deleted or replaced under the service.
"""

from __future__ import annotations

import logging
from pathlib import Path

from globus_compute import state_dir as state_dir_mod
from globus_compute.service.store.database import (
    Database,
    StorageError,
    StorageFull,
    StorageLost,
)
from globus_compute.service.store.endpoints import EndpointStore, NameConflict
from globus_compute.service.store.functions import FunctionStore
from globus_compute.service.store.groups import GroupStore
from globus_compute.service.store.identities import IdentityStore
from globus_compute.service.store.leases import LeaseStore
from globus_compute.service.store.tasks import TaskStore

__all__ = ["Database", "NameConflict", "StorageError", "StorageFull", "StorageLost", "Store"]

log = logging.getLogger(__name__)


class Store:
    """The service's database, with one store per concept.

    Args:
        state_dir: Directory of the database file and the token files.
    """

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.database = Database(state_dir_mod.database_path(self.state_dir))
        tokens = state_dir_mod.token_path(self.state_dir).parent
        if self.database.created and tokens.is_dir() and any(tokens.iterdir()):
            log.warning(
                "State dir %s has identities but no database: a new, empty one was created. "
                "Tasks, functions and endpoints of before are gone and old tokens are replaced.",
                self.state_dir,
            )
        self.identities = IdentityStore(self.database, self.state_dir)
        self.groups = GroupStore(self.database, self.identities)
        self.functions = FunctionStore(self.database)
        self.endpoints = EndpointStore(self.database)
        self.tasks = TaskStore(self.database)
        self.leases = LeaseStore(self.database)

    def close(self) -> None:
        self.database.close()
