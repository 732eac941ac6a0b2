"""Coordinator state in Redis/Valkey (``Store``) and the embedded Valkey server for single-machine setups."""

from __future__ import annotations

from aicut.store.embedded import EmbeddedValkey
from aicut.store.tasks import Store, Transition, now_ms

__all__ = ["EmbeddedValkey", "Store", "Transition", "now_ms"]
