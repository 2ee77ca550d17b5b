"""Column types with the guarantees Loom promises on every database.

``ExactDecimal`` keeps money out of binary floats: PostgreSQL stores NUMERIC exactly; SQLite has
no decimal type, so values are bound as text into a NUMERIC-affinity column (exact to 15
significant digits) and always read back as ``Decimal`` quantized to the field's scale.
"""
from __future__ import annotations

from decimal import Decimal, ROUND_HALF_UP

import sqlalchemy as sa


class ExactDecimal(sa.types.TypeDecorator):
    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 2):
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            # Plain NUMERIC affinity; we bind text ourselves to avoid a float round trip.
            return dialect.type_descriptor(sa.types.NUMERIC())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value if isinstance(value, Decimal) else Decimal(str(value))
        value = value.quantize(self._quantum, rounding=ROUND_HALF_UP)
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, Decimal):
            value = Decimal(str(value))
        return value.quantize(self._quantum, rounding=ROUND_HALF_UP)

    @property
    def python_type(self):
        return Decimal


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware datetimes on every database: stored in UTC, read back aware (SQLite keeps
    no zone, so a naive value read from it is UTC by construction)."""

    impl = sa.DateTime
    cache_ok = True

    def __init__(self):
        super().__init__(timezone=True)

    def process_bind_param(self, value, dialect):
        from datetime import datetime, timezone
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            value = value.astimezone(timezone.utc)
            return value.replace(tzinfo=None) if dialect.name == "sqlite" else value
        return value

    def process_result_value(self, value, dialect):
        from datetime import timezone
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value
