"""The designer's screens and API (forms and entities, BPMN processes, reports), from the
``designer`` package; registered here because ``runtime`` alone knows HTTP."""
from designer.web import bp, init_app  # noqa: F401
