"""Records: the one write road (:class:`RecordService`) and the one read road (:class:`Query`)."""
from engine.records.bulk import ImportRejected, ImportResult
from engine.records.serialize import mask_value, record_to_json, to_json_value
from engine.records.query import ListRequest, Query
from engine.records.service import RecordService
from engine.records.uow import UnitOfWork

__all__ = ["RecordService", "Query", "ListRequest", "UnitOfWork", "ImportResult", "ImportRejected", "record_to_json", "to_json_value",
           "mask_value"]
