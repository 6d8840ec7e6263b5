"""Service levels: business calendars, deadlines, escalations."""
