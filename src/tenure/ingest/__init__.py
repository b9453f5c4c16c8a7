"""Ingestion: files of every kind, through mapping files, idempotently."""

from tenure.ingest.importer import ImportRefused, import_file
from tenure.ingest.ledger import ImportReport, RowError
from tenure.ingest.mapping import Mapping, MappingError, load_mapping

__all__ = [
    "ImportRefused",
    "ImportReport",
    "Mapping",
    "MappingError",
    "RowError",
    "import_file",
    "load_mapping",
]
