"""Ingest fixtures: the lakehouse's movable clock, for quota windows."""

from tests.lakehouse_support import clock

__all__ = ["clock"]
