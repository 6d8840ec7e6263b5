"""Marshmallow fields shared by the domain schemas."""

from marshmallow import fields

from contact_center.db_types import isoformat


class UTCDateTime(fields.DateTime):
    """Dumps ISO 8601 UTC with a Z; OpenAPI sees a date-time string."""

    def _serialize(self, value, attr, obj, **kwargs):
        return isoformat(value)


class StrictBoolean(fields.Boolean):
    """Only JSON true and false: "yes" or "1" are refused, not guessed at."""

    truthy = {True}
    falsy = {False}
