"""The store: papers keyed by PMID, topic membership, runs and per-topic sync state."""

from tracker.store.database import Store, migrate_store, open_store
from tracker.store.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Store", "open_store", "migrate_store"]
