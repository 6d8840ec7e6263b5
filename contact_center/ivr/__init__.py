"""Voice: TwiML rendering and the Twilio REST calls that move calls around."""
