"""Where an agent's call leg rings, and the access tokens of the Twilio Voice JavaScript SDK.

An agent's `voice_endpoint` is a phone number (E.164), a SIP URI or `client:<identity>`
(the browser); unset means `client:<username>`. Every agent leg is a Twilio REST call to
that address (routing.services, ivr.control), so a browser softphone must register with
the same identity: the token's identity is taken from the endpoint, never from the request.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import phonenumbers
from flask import current_app
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from contact_center import audit
from contact_center.agents.models import User
from contact_center.customers.services import mask
from contact_center.errors import APIError, Conflict
from contact_center.extensions import db

log = logging.getLogger(__name__)

ENDPOINT_KINDS = ("browser", "phone", "sip")
CLIENT_PREFIX = "client:"
SIP_PREFIX = "sip:"
MAX_ENDPOINT_LENGTH = 200  # the users.voice_endpoint column
# sip:user@host[:port][;param=value...]: no headers, no passwords, nothing Twilio would not dial.
_SIP_URI = re.compile(
    r"^sip:(?P<user>[A-Za-z0-9._~!$&'()*+,=%-]+)@(?P<host>[A-Za-z0-9.-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<params>(?:;[A-Za-z]+=[A-Za-z0-9._-]+)*)$",
    re.IGNORECASE,
)
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# What the agent console's Content-Security-Policy adds when the softphone is on: the SDK's
# signalling (wss://voice-js[.edge].twilio.com), its insights events (eventgw) and its
# ringtones (sdk.twilio.com, fetched and played).
CSP_CONNECT_SOURCES = ("wss://*.twilio.com", "https://*.twilio.com")
CSP_MEDIA_SOURCES = ("https://sdk.twilio.com",)


@dataclass(frozen=True)
class VoiceToken:
    token: str
    identity: str
    expires_at: datetime
    ttl_s: int


def endpoint_kind(address: str) -> str:
    """browser, sip or phone, from a call address."""
    if address.startswith(CLIENT_PREFIX):
        return "browser"
    if address.lower().startswith(SIP_PREFIX):
        return "sip"
    return "phone"


def client_identity(user: User) -> str | None:
    """The Twilio Client identity the agent's leg dials, or None when it rings elsewhere."""
    address = user.call_address()
    if endpoint_kind(address) != "browser":
        return None
    return address[len(CLIENT_PREFIX) :]


def mask_endpoint(address: str | None) -> str:
    """A call address fit for logs and screens: phone numbers and SIP users shortened."""
    if not address:
        return "-"
    kind = endpoint_kind(address)
    if kind == "browser":
        return address
    if kind == "sip":
        return SIP_PREFIX + mask(address[len(SIP_PREFIX) :])
    return mask(address)


def softphone_configured() -> bool:
    """True when access tokens can be signed (account SID, API key SID and secret set)."""
    config = current_app.config
    return bool(
        config["TWILIO_ACCOUNT_SID"]
        and config["TWILIO_API_KEY_SID"]
        and config["TWILIO_API_KEY_SECRET"]
    )


def describe_endpoint(user: User) -> dict:
    """The agent's endpoint: kind, address, masked address, identity, softphone availability."""
    address = user.call_address()
    return {
        "agent_id": user.id,
        "kind": endpoint_kind(address),
        "address": address,
        "masked_address": mask_endpoint(address),
        "identity": client_identity(user),
        "softphone_configured": softphone_configured(),
    }


def _invalid(message: str) -> APIError:
    fields = {"address": [message]}
    return APIError(422, "The request is well-formed but some fields are invalid.", fields=fields)


def normalise_phone_endpoint(raw: str) -> str:
    """A valid phone number in E.164 (PHONE_DEFAULT_REGION for national formats), or 422."""
    try:
        number = phonenumbers.parse(raw, current_app.config["PHONE_DEFAULT_REGION"])
    except phonenumbers.NumberParseException:
        raise _invalid("Not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise _invalid("Not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return (
        len(labels) >= 2
        and all(_HOST_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


def normalise_sip_endpoint(raw: str) -> str:
    """A SIP URI `sip:user@host[:port][;param=value]`, scheme and host lower-cased, or 422."""
    match = _SIP_URI.match(raw.strip())
    if match is None or not _valid_host(match["host"]):
        raise _invalid("Not a SIP address: use sip:user@host (an optional :port, ;transport=tls).")
    if match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
        raise _invalid("The port must be from 1 to 65535.")
    port = f":{match['port']}" if match["port"] else ""
    return f"sip:{match['user']}@{match['host'].lower()}{port}{match['params']}"


def parse_endpoint(kind: str, address: str | None) -> str | None:
    """The voice_endpoint value for a kind and address (None = the browser), or 422."""
    if kind not in ENDPOINT_KINDS:
        raise APIError(422, "Unknown endpoint kind.", fields={"kind": ["Unknown kind."]})
    if kind == "browser":
        if address:
            raise _invalid("The browser takes no address.")
        return None
    if not address or not address.strip():
        raise _invalid(f"A {'phone number' if kind == 'phone' else 'SIP address'} is needed.")
    normalise = normalise_phone_endpoint if kind == "phone" else normalise_sip_endpoint
    value = normalise(address)
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise _invalid(f"At most {MAX_ENDPOINT_LENGTH} characters.")
    return value


def set_endpoint(user: User, kind: str, address: str | None, actor: User) -> User:
    """Make the agent's calls ring at the browser, a phone or a SIP address (audited).

    Anyone may set their own; a supervisor may set those of users whose role is not above
    theirs (an admin's calls are not redirected by a supervisor)."""
    if actor.id != user.id and not actor.has_role(user.role):
        raise APIError(403, f"Only an {user.role} or above may change this user's endpoint.")
    value = parse_endpoint(kind, address)
    before = user.voice_endpoint
    if value != before:
        user.voice_endpoint = value
        audit.record(
            "agent.voice_endpoint",
            "user",
            user.id,
            actor_id=actor.id,
            before={"voice_endpoint": before},
            after={"voice_endpoint": value},
        )
        db.session.commit()
        log.info(
            "user %s: calls ring at %s (set by user %s)",
            user.id,
            mask_endpoint(user.call_address()),
            actor.id,
        )
    return user


def issue_voice_token(user: User) -> VoiceToken:
    """A short-lived Voice SDK access token for the agent's own client identity.

    503 when the softphone is not configured; 409 when the agent's calls ring at a phone or
    SIP address (a registered browser would never ring). The token is never logged.
    """
    if not softphone_configured():
        raise APIError(
            503,
            "The softphone is not configured: TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET "
            "are not set.",
            code="softphone_not_configured",
        )
    identity = client_identity(user)
    if identity is None:
        raise Conflict(
            f"Your calls ring at {mask_endpoint(user.call_address())}: choose the browser "
            "to use the softphone.",
            fields={"endpoint": endpoint_kind(user.call_address())},
        )
    config = current_app.config
    ttl = int(config["VOICE_TOKEN_TTL_S"])
    now = int(time.time())
    grant = VoiceGrant(
        incoming_allow=True, outgoing_application_sid=config["TWILIO_TWIML_APP_SID"] or None
    )
    token = AccessToken(
        config["TWILIO_ACCOUNT_SID"],
        config["TWILIO_API_KEY_SID"],
        config["TWILIO_API_KEY_SECRET"],
        grants=[grant],
        identity=identity,
        nbf=now,
        ttl=ttl,
        valid_until=now + ttl,
    )
    log.info("user %s: voice token issued for %s s", user.id, ttl)
    return VoiceToken(
        token=token.to_jwt(),
        identity=identity,
        expires_at=datetime.fromtimestamp(now + ttl, UTC),
        ttl_s=ttl,
    )


def page_csp_sources() -> dict[str, tuple[str, ...]]:
    """Sources the agent console's Content-Security-Policy adds for the SDK (none when off)."""
    if not softphone_configured():
        return {"csp_connect_src": (), "csp_media_src": ()}
    return {"csp_connect_src": CSP_CONNECT_SOURCES, "csp_media_src": CSP_MEDIA_SOURCES}
