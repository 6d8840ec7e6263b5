"""What calendar definitions share wherever they are written (stored calendars, IVR hours)."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.sla.calendars import WEEKDAYS, place_errors

# HH:MM; 24:00 closes a window at midnight.
CLOCK = validate.Regexp(r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", error="Times are HH:MM.")


def weekly_windows(required: bool = True) -> fields.Dict:
    """{"mon": [["09:00", "17:00"], ...], ...}: the working windows of each weekday."""
    optional = {} if required else {"load_default": None}
    return fields.Dict(
        keys=fields.String(validate=validate.OneOf(WEEKDAYS)),
        values=fields.List(
            fields.List(fields.String(validate=CLOCK), validate=validate.Length(2, 2))
        ),
        required=required,
        **optional,
    )


class PlaceChecked(Schema):
    """A schema with `timezone`, `country` and `subdivision` that must exist."""

    @validates_schema
    def known_place(self, data, **kwargs):
        errors = place_errors(data)
        if errors:
            raise ValidationError(errors)
