"""Customers, their identities (E.164 phones, emails), notes and the screen pop."""
