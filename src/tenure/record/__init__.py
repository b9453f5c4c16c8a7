"""The account record: kinds, fields and the machine-readable schema."""

from tenure.record.kinds import Field, Kind, Record
from tenure.record.schema import KINDS, json_schema, kind_named

__all__ = ["KINDS", "Field", "Kind", "Record", "json_schema", "kind_named"]
