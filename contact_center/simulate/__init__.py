"""Traffic simulation and the local stand-ins for the outside world (Twilio REST)."""
