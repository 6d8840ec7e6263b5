"""Call control on the interaction's conference: hold, transfer, monitoring, recording.

Every call is bridged through a conference named after its interaction, so these are
participant operations on Twilio's Conference API.
"""

from __future__ import annotations

import logging

from flask import current_app
from twilio.base.exceptions import TwilioRestException

from contact_center import audit
from contact_center.agents.models import User
from contact_center.db_types import utcnow
from contact_center.errors import APIError, Conflict
from contact_center.extensions import db
from contact_center.ivr import twiml
from contact_center.ivr.calls import get_twilio_client, hang_up, public_url, redirect_call
from contact_center.realtime.events import emit_to_agent
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue

log = logging.getLogger(__name__)
MONITOR_MODES = ("listen", "whisper", "barge")
DEFAULT_CONSENT = "This call will be recorded for quality and training purposes."


def conference_name(interaction: Interaction) -> str:
    """The conference every leg of an interaction joins."""
    return f"cc-interaction-{interaction.id}"


def _live_call(interaction: Interaction) -> None:
    if interaction.channel not in ("voice", "callback") or interaction.status != "active":
        raise Conflict("The call is not connected.")
    if not interaction.external_id:
        raise Conflict("The call has no Twilio leg.")


def _conference_sid(interaction: Interaction) -> str:
    conferences = get_twilio_client().conferences.list(
        friendly_name=conference_name(interaction), status="in-progress", limit=1
    )
    if not conferences:
        raise Conflict("The call's conference is not in progress.")
    return conferences[0].sid


def _twilio(action: str):
    """Turn Twilio REST failures into a clear 502 instead of a crash."""

    def wrap(error: TwilioRestException) -> APIError:
        log.warning("Twilio refused %s: %s", action, error.msg)
        return APIError(502, f"Twilio refused to {action}.", code="upstream_error")

    return wrap


def set_hold(interaction: Interaction, hold: bool) -> Interaction:
    """Put the customer on hold (with music) or take them off it; hold time is counted."""
    _live_call(interaction)
    if interaction.on_hold == hold:
        return interaction
    try:
        get_twilio_client().conferences(_conference_sid(interaction)).participants(
            interaction.external_id
        ).update(hold=hold, hold_url=twiml.HOLD_MUSIC, hold_method="GET")
    except TwilioRestException as exc:
        raise _twilio("change hold")(exc) from None
    now = utcnow()
    if hold:
        interaction.hold_started_at = now
    elif interaction.hold_started_at is not None:
        interaction.hold_s += int((now - interaction.hold_started_at).total_seconds())
        interaction.hold_started_at = None
    interaction.on_hold = hold
    db.session.commit()
    _emit_update(interaction)
    return interaction


def set_recording_paused(interaction: Interaction, paused: bool, actor: User) -> Interaction:
    """Pause the call's recording (say, while card details are given) or resume it; audited."""
    _live_call(interaction)
    if interaction.queue is None or not interaction.queue.record_calls:
        raise Conflict("This call is not being recorded.")
    if interaction.recording_paused == paused:
        return interaction
    try:
        get_twilio_client().conferences(_conference_sid(interaction)).recordings(
            "Twilio.CURRENT"
        ).update(status="paused" if paused else "in-progress", pause_behavior="skip")
    except TwilioRestException as exc:
        raise _twilio("pause the recording" if paused else "resume the recording")(exc) from None
    interaction.recording_paused = paused
    audit.record(
        "recording.paused" if paused else "recording.resumed",
        "interaction",
        interaction.id,
        actor_id=actor.id,
        before={"recording_paused": not paused},
        after={"recording_paused": paused},
    )
    db.session.commit()
    _emit_update(interaction)
    return interaction


def attach_call_recording(interaction_id: int, recording_url: str) -> Interaction | None:
    """A finished recording of a conversation: its URL is kept on the interaction."""
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is not None:
        interaction.recording_url = recording_url
    return interaction


def _emit_update(interaction: Interaction) -> None:
    if interaction.agent_id is not None:
        emit_to_agent(
            interaction.agent_id, "interaction_updated", routing.interaction_payload(interaction)
        )


def monitor(interaction: Interaction, supervisor: User, mode: str) -> str:
    """Bring a supervisor into the call: listen (muted), whisper (to the agent) or barge in."""
    if mode not in MONITOR_MODES:
        raise APIError(422, "Unknown monitoring mode.", fields={"mode": list(MONITOR_MODES)})
    _live_call(interaction)
    options: dict = {"muted": mode == "listen", "early_media": True}
    if mode == "whisper":
        if not interaction.agent_call_sid:
            raise Conflict("The agent's leg is not known, so there is no one to whisper to.")
        options.update(coaching=True, call_sid_to_coach=interaction.agent_call_sid)
    try:
        participant = (
            get_twilio_client()
            .conferences(_conference_sid(interaction))
            .participants.create(
                from_=current_app.config["TWILIO_CALLER_ID"],
                to=supervisor.call_address(),
                **options,
            )
        )
    except TwilioRestException as exc:
        raise _twilio("add the supervisor")(exc) from None
    log.info("supervisor %s %s interaction %s", supervisor.id, mode, interaction.id)
    return participant.call_sid


def transfer(interaction: Interaction, queue: Queue) -> Interaction:
    """Blind transfer to a queue: the caller waits again there, the agent's leg hangs up."""
    _live_call(interaction)
    agent_leg = interaction.agent_call_sid
    routing.transfer_to_queue(interaction, queue)
    try:
        redirect_call(
            interaction.external_id,
            public_url(f"/webhooks/twilio/voice/requeue/{interaction.id}"),
        )
        if agent_leg:
            hang_up(agent_leg)
    except TwilioRestException as exc:
        log.warning("transfer of interaction %s: %s", interaction.id, exc.msg)
    return interaction
