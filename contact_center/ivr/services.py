"""Walking a caller through an IVR flow: render nodes, take input, hand over to routing.

Functions stage their database changes and return (TwiML, after_commit): the webhook
stores its answer with those changes in one commit, then runs `after_commit` (routing
work in Redis), so a retried webhook replays the same TwiML and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from twilio.twiml.voice_response import Dial, VoiceResponse

from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.ivr import twiml
from contact_center.ivr.calls import public_url
from contact_center.ivr.flows import FlowVersion, Renderer, is_open
from contact_center.ivr.models import IvrFlow
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue
from contact_center.tickets import services as tickets

log = logging.getLogger(__name__)
AfterCommit = Callable[[], Any] | None
MAX_HOPS = 20  # say/hours nodes chained in one response; more means a loop in the flow
GATHER_PATH = "/webhooks/twilio/voice/gather"
RECORDING_PATH = "/webhooks/twilio/voice/recording"
TRANSCRIPTION_PATH = "/webhooks/twilio/voice/transcription"


def node_url(version_id: int, node_id: str, **query: Any) -> str:
    """The gather URL of a node of a flow version, with its step or attempt."""
    params = "&".join(f"{key}={value}" for key, value in sorted(query.items()))
    return public_url(f"{GATHER_PATH}/{version_id}/{node_id}" + (f"?{params}" if params else ""))


def _renderer(record: IvrFlow | FlowVersion) -> Renderer:
    return Renderer(record, node_url)


def _end_in_ivr(interaction: Interaction, outcome: str) -> None:
    if interaction.status != "ivr":
        return  # ended already (a voicemail then goodbye keeps "voicemail")
    interaction.status = "ended"
    interaction.outcome = outcome
    interaction.ended_at = utcnow()


def enter(
    interaction: Interaction,
    record: IvrFlow | FlowVersion,
    node_id: str,
    response: VoiceResponse | None = None,
) -> tuple[str, AfterCommit]:
    """The TwiML for arriving at a node (following say and hours nodes directly).

    `response` may already hold what the caller hears first (a ticket's status, say).
    """
    renderer = _renderer(record)
    response = response if response is not None else VoiceResponse()
    for _ in range(MAX_HOPS):
        node = renderer.node(node_id)
        if node is None:
            return _fallback(interaction, response, "the flow has no node " + node_id)
        kind = node["type"]
        if kind == "say":
            renderer.say(response, node["text"])
            node_id = node["next"]
        elif kind == "hours":
            node_id = node["open"] if is_open(node) else node["closed"]
        elif kind in ("menu", "language", "ticket_status"):
            return renderer.gather(node_id, node, attempt=1, response=response), None
        elif kind == "enqueue":
            return _enqueue(interaction, response, node)
        elif kind == "voicemail":
            renderer.say(response, node["prompt"])
            response.record(
                max_length=node["max_length_s"],
                play_beep=True,
                action=node_url(record.id, node_id, step="recorded"),
                method="POST",
                recording_status_callback=public_url(RECORDING_PATH),
                recording_status_callback_method="POST",
                **twiml.transcription(
                    public_url(TRANSCRIPTION_PATH) if node["transcribe"] else None
                ),
            )
            return str(response), None
        elif kind == "transfer":
            renderer.say(response, node.get("text"))
            dial = Dial()
            dial.number(node["number"])
            response.append(dial)
            _end_in_ivr(interaction, "transferred")
            return str(response), None
        else:  # hangup
            renderer.say(response, node.get("text"))
            response.hangup()
            _end_in_ivr(interaction, "self_service")
            return str(response), None
    return _fallback(interaction, response, "the flow loops without asking the caller")


def closed_for_emergency(interaction: Interaction, message: str) -> tuple[str, AfterCommit]:
    """The emergency closure: the caller hears the message; the call is recorded as closed."""
    _end_in_ivr(interaction, "closed")
    return twiml.say_and_hang_up(message), None


def enter_default_queue(interaction: Interaction) -> tuple[str, AfterCommit]:
    """No flow to follow: the caller goes to the default queue."""
    return _fallback(interaction, VoiceResponse(), "no IVR flow")


def _fallback(
    interaction: Interaction, response: VoiceResponse, why: str
) -> tuple[str, AfterCommit]:
    """A broken flow must not lose the caller: they go to the default queue."""
    log.error("IVR fallback for interaction %s: %s", interaction.id, why)
    return _enqueue(
        interaction, response, {"queue": routing.default_queue().name, "skills": {}, "priority": 0}
    )


def _enqueue(
    interaction: Interaction, response: VoiceResponse, node: dict[str, Any]
) -> tuple[str, AfterCommit]:
    queue = db.session.scalar(sa.select(Queue).where(Queue.name == node["queue"]))
    queue = queue or routing.default_queue()
    if interaction.status == "ivr":
        routing.queue_waiting(
            interaction, queue, priority=node.get("priority", 0), skills=node.get("skills")
        )
    return hold_in_queue(queue.name, response=response), lambda: routing.enqueue(interaction)


def hold_in_queue(
    queue_name: str, greeting: str | None = None, response: VoiceResponse | None = None
) -> str:
    """<Enqueue> the caller with our wait URL (announcements, options) and result URL."""
    return twiml.enqueue_response(
        queue_name,
        wait_url=public_url("/webhooks/twilio/voice/wait"),
        action_url=public_url("/webhooks/twilio/voice/enqueue-result"),
        greeting=greeting,
        response=response,
    )


def take_input(
    interaction: Interaction,
    record: IvrFlow,
    node_id: str,
    *,
    attempt: int,
    digits: str | None,
    speech: str | None,
) -> tuple[str, AfterCommit]:
    """The caller pressed a key, spoke, or said nothing at a menu or language node."""
    renderer = _renderer(record)
    node = renderer.node(node_id)
    if node is None or node["type"] not in ("menu", "language", "ticket_status"):
        return _fallback(interaction, VoiceResponse(), f"input for node {node_id}")
    if node["type"] == "ticket_status":
        return _ticket_status(interaction, record, node_id, node, attempt, digits)
    choice = (digits or "").strip()[:1]
    if not choice and speech:
        heard = speech.strip().lower().rstrip(".!?")
        choice = node.get("speech", {}).get(heard, "")
    target = node["options"].get(choice) if choice else None
    if target is None:
        if attempt <= node["retries"]:
            preface = node["invalid_text"] if (digits or speech) else "Sorry, I did not hear you."
            return renderer.gather(node_id, node, attempt + 1, preface=preface), None
        return enter(interaction, record, node["on_failure"])
    if node["type"] == "language":
        skills = dict(interaction.required_skills or {})
        skills[f"lang:{target}"] = node["min_level"]
        interaction.required_skills = skills
        return enter(interaction, record, node["next"])
    return enter(interaction, record, target)


def _ticket_status(
    interaction: Interaction,
    record: IvrFlow,
    node_id: str,
    node: dict[str, Any],
    attempt: int,
    digits: str | None,
) -> tuple[str, AfterCommit]:
    """Self-service: the status of the ticket whose number the caller keyed."""
    number = (digits or "").strip("#*")
    ticket = tickets.ticket_by_number(number) if number.isdigit() else None
    if ticket is not None and ticket.customer_id not in (None, interaction.customer_id):
        ticket = None  # another customer's ticket: the same answer as an unknown number
    if ticket is None:
        if attempt <= node["retries"]:
            preface = node["not_found_text"] if number else "Sorry, I did not hear you."
            return _renderer(record).gather(node_id, node, attempt + 1, preface=preface), None
        return enter(interaction, record, node["on_failure"])
    response = VoiceResponse()
    _renderer(record).say(response, tickets.spoken_status(ticket))
    return enter(interaction, record, node["next"], response)


def recorded(
    interaction: Interaction, record: IvrFlow, node_id: str, recording_url: str | None
) -> tuple[str, AfterCommit]:
    """A voicemail was left: the interaction ends as voicemail; the flow goes on."""
    _lock(interaction)
    node = _renderer(record).node(node_id)
    _end_in_ivr(interaction, "voicemail")
    if interaction.leave_reason == "fallback" and interaction.status == "ended":
        # Recorded after an outage (webhooks/deferred): the fallback took this message.
        interaction.outcome = "voicemail"
    if interaction.outcome == "voicemail":
        tickets.record_voicemail(interaction, recording_url)
    if node is None or node["type"] != "voicemail":
        response = VoiceResponse()
        response.hangup()
        return str(response), None
    return enter(interaction, record, node["next"])


def _lock(interaction: Interaction) -> None:
    """Lock the call's row: Twilio's <Record> action, recording and transcription callbacks
    can arrive at the same moment, and only one of them may create the voicemail's ticket."""
    db.session.refresh(interaction, with_for_update=True)


def attach_recording(call_sid: str, recording_url: str) -> Interaction | None:
    """A recording status callback: keep the recording's URL; a voicemail becomes a ticket.

    A call we have no record of left its message through the fallback URL while the
    database was down: it is recorded now, as a voicemail, so no message is lost.
    """
    interaction = routing.interaction_by_external_id(call_sid)
    if interaction is not None:
        _lock(interaction)
    if interaction is None:
        now = utcnow()
        interaction = Interaction(
            channel="voice",
            direction="inbound",
            external_id=call_sid,
            status="ended",
            outcome="voicemail",
            created_at=now,
            ended_at=now,
        )
        db.session.add(interaction)
        db.session.flush()
    if interaction.leave_reason == "fallback" and interaction.status == "ended":
        # Recorded after an outage (webhooks/deferred): the fallback took this message.
        interaction.outcome = "voicemail"
    if interaction.outcome == "voicemail":
        tickets.record_voicemail(interaction, recording_url)
    else:
        interaction.recording_url = recording_url
    return interaction


def attach_transcription(call_sid: str, text: str) -> Interaction | None:
    """Twilio's transcription of a voicemail: the ticket's message gets the text."""
    interaction = routing.interaction_by_external_id(call_sid)
    if interaction is not None:
        _lock(interaction)
        tickets.attach_transcription(interaction, text)
    return interaction
