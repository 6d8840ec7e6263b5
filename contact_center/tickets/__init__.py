"""Tickets: the cases customers' calls, voicemails and mails become."""
