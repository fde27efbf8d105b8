"""The store: papers keyed by PMID, topic membership, runs and per-topic sync state."""

from tracker.store.database import SCHEMA_VERSION, Store, open_store

__all__ = ["SCHEMA_VERSION", "Store", "open_store"]
