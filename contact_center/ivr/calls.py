"""Twilio REST through the official client; TWILIO_API_BASE_URL points it at a stub in tests."""

from __future__ import annotations

from flask import current_app
from twilio.rest import Client


def get_twilio_client() -> Client:
    """The app's Twilio REST client, created on first use."""
    client = current_app.extensions.get("twilio_client")
    if client is None:
        config = current_app.config
        if not (config["TWILIO_ACCOUNT_SID"] and config["TWILIO_AUTH_TOKEN"]):
            raise RuntimeError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set")
        client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"])
        if config["TWILIO_API_BASE_URL"]:
            client.api.base_url = config["TWILIO_API_BASE_URL"].rstrip("/")
        current_app.extensions["twilio_client"] = client
    return client


def public_url(path: str) -> str:
    """An absolute URL Twilio can reach for one of our paths."""
    return current_app.config["PUBLIC_BASE_URL"] + path


def redirect_call(call_sid: str, url: str) -> None:
    """Send a live call to new TwiML (e.g. out of <Enqueue> into a conference)."""
    get_twilio_client().calls(call_sid).update(url=url, method="POST")


def dial(to: str, url: str, status_callback: str) -> str:
    """Place an outbound call leg whose TwiML is at `url`; returns its CallSid."""
    call = get_twilio_client().calls.create(
        to=to,
        from_=current_app.config["TWILIO_CALLER_ID"],
        url=url,
        method="POST",
        status_callback=status_callback,
        status_callback_method="POST",
        # Ringing and answered too, not just completed: the interaction keeps their times.
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    return call.sid


def hang_up(call_sid: str) -> None:
    """End a live call."""
    get_twilio_client().calls(call_sid).update(status="completed")
