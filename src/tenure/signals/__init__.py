"""The Signal Stack: signals declared once, computed by a batch and an incremental engine."""

from tenure.signals.catalog import GROUPS, SOURCES, Catalog, catalog
from tenure.signals.declare import Signal, Source

__all__ = ["GROUPS", "SOURCES", "Catalog", "Signal", "Source", "catalog"]
