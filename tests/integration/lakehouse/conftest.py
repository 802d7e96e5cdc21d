"""Lakehouse fixtures: a real backend on a fresh Delta root per test, with a fake clock."""

from tests.lakehouse_support import admin, alice, backend, client, clock, root

__all__ = ["admin", "alice", "backend", "client", "clock", "root"]
