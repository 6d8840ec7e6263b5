"""Complaints: a ticket type with its own process (ISO 10002) and regulatory clocks."""
