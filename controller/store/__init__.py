"""Stores hold desired state (spec) and observed state (status); see base.Store."""

from controller.store.base import (
    BrokenObject,
    Conflict,
    InvalidObject,
    NotFound,
    Store,
    StoreError,
    WatchEvent,
)

__all__ = ["BrokenObject", "Conflict", "InvalidObject", "NotFound", "Store", "StoreError", "WatchEvent"]
