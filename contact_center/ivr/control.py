"""Call control on the interaction's conference: hold, transfers, monitoring, recording,
outbound calls.

Every call is bridged through a conference named after its interaction, so these are
participant operations on Twilio's Conference API. Each leg joins with
endConferenceOnExit, so a leg that is to leave while the call goes on is first switched off
that flag (warm transfer).
"""

from __future__ import annotations

import logging

from flask import current_app
from twilio.base.exceptions import TwilioRestException

from contact_center import audit
from contact_center.agents.models import User
from contact_center.customers.models import Customer
from contact_center.customers.services import normalise_phone, scrub
from contact_center.db_types import utcnow
from contact_center.errors import APIError, Conflict
from contact_center.extensions import db
from contact_center.ivr import twiml
from contact_center.ivr.calls import dial, get_twilio_client, hang_up, public_url, redirect_call
from contact_center.realtime.events import emit_to_agent
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue

log = logging.getLogger(__name__)
MONITOR_MODES = ("listen", "whisper", "barge")
DEFAULT_CONSENT = "This call will be recorded for quality and training purposes."
STATUS_CALLBACK = "/webhooks/twilio/voice/status"


def conference_name(interaction: Interaction) -> str:
    """The conference every leg of an interaction joins."""
    return conference_name_of(interaction.id)


def conference_name_of(interaction_id: int) -> str:
    """The conference of an interaction known by its id alone (no database needed)."""
    return f"cc-interaction-{interaction_id}"


def _live_call(interaction: Interaction) -> None:
    # Locked: two control requests on one call (two consults, say) take turns.
    db.session.refresh(interaction, with_for_update=True)
    if interaction.channel not in ("voice", "callback") or interaction.status != "active":
        raise Conflict("The call is not connected.")
    if not interaction.external_id:
        raise Conflict("The call has no Twilio leg.")


def _no_consult(interaction: Interaction) -> None:
    if interaction.consult_agent_id is not None:
        raise Conflict("A consultation is in progress: complete or cancel it first.")


def _participants(interaction: Interaction):
    return get_twilio_client().conferences(_conference_sid(interaction)).participants


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
        log.warning("Twilio refused %s: %s", action, scrub(error.msg))
        return APIError(502, f"Twilio refused to {action}.", code="upstream_error")

    return wrap


def set_hold(interaction: Interaction, hold: bool) -> Interaction:
    """Put the customer on hold (with music) or take them off it; hold time is counted."""
    _live_call(interaction)
    _no_consult(interaction)
    if interaction.on_hold == hold:
        return interaction
    try:
        _customer_hold(interaction, hold)
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


def _customer_hold(interaction: Interaction, hold: bool) -> None:
    _participants(interaction)(interaction.external_id).update(
        hold=hold, hold_url=twiml.HOLD_MUSIC, hold_method="GET"
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
    audit.record(
        "interaction.monitored",
        "interaction",
        interaction.id,
        actor_id=supervisor.id,
        after={"mode": mode, "agent_id": interaction.agent_id, "call_sid": participant.call_sid},
    )
    db.session.commit()
    log.info("supervisor %s %s interaction %s", supervisor.id, mode, interaction.id)
    return participant.call_sid


def transfer(
    interaction: Interaction, queue: Queue | None = None, agent: User | None = None
) -> Interaction:
    """Blind transfer to a queue or to one agent: the caller waits again, the agent's leg hangs up.

    An agent gets one offer (within the preferred-agent window); declined, missed or not
    free in time, the call goes to the interaction's queue.
    """
    _live_call(interaction)
    agent_leg = interaction.agent_call_sid
    if agent is not None:
        fallback = queue or interaction.queue or routing.default_queue()
        routing.transfer_to_agent(interaction, agent, fallback)
    elif queue is not None:
        routing.transfer_to_queue(interaction, queue)
    else:
        raise APIError(422, "Transfer to a queue or to an agent.")
    try:
        redirect_call(
            interaction.external_id,
            public_url(f"/webhooks/twilio/voice/requeue/{interaction.id}"),
        )
        if agent_leg:
            hang_up(agent_leg)
    except TwilioRestException as exc:
        log.warning("transfer of interaction %s: %s", interaction.id, scrub(exc.msg))
    return interaction


def consult(interaction: Interaction, target: User) -> Interaction:
    """Warm transfer, step one: the customer holds while the target agent's leg joins."""
    _live_call(interaction)
    routing.check_consult(interaction, target)
    routing.take_voice_slot(target)  # nobody offers them a call while they are consulted
    held_here = False
    try:
        participants = _participants(interaction)
        if not interaction.on_hold:
            _customer_hold(interaction, True)
            held_here = True
        leg = participants.create(
            from_=current_app.config["TWILIO_CALLER_ID"],
            to=target.call_address(),
            early_media=True,
            # Until the consult completes, the consulted agent hanging up must not end the call.
            end_conference_on_exit=False,
            status_callback=public_url(STATUS_CALLBACK),
            status_callback_method="POST",
        )
    except (TwilioRestException, APIError) as exc:
        routing.give_back_voice_slot(target)
        if held_here:
            _undo_hold(interaction)
        if isinstance(exc, APIError):
            raise
        raise _twilio("dial the consulted agent")(exc) from None
    log.info(
        "interaction %s: agent %s consults %s", interaction.id, interaction.agent_id, target.id
    )
    return routing.start_consult(interaction, target, leg.call_sid)


def _undo_hold(interaction: Interaction) -> None:
    try:
        _customer_hold(interaction, False)
    except (TwilioRestException, APIError):
        log.warning("interaction %s: could not take the customer off hold", interaction.id)


def _consulting(interaction: Interaction) -> None:
    _live_call(interaction)
    if interaction.consult_agent_id is None or not interaction.consult_call_sid:
        raise Conflict("No consultation is in progress.")


def complete_consult(interaction: Interaction) -> Interaction:
    """Warm transfer, step two: the consulted agent keeps the call, the consulting agent leaves."""
    _consulting(interaction)
    agent_leg = interaction.agent_call_sid
    try:
        participants = _participants(interaction)
        # The new agent's leg now ends the call when it leaves; the old one's no longer does.
        participants(interaction.consult_call_sid).update(end_conference_on_exit=True)
        if agent_leg:
            participants(agent_leg).update(end_conference_on_exit=False)
        _customer_hold(interaction, False)
    except TwilioRestException as exc:
        raise _twilio("complete the transfer")(exc) from None
    routing.complete_consult(interaction)
    if agent_leg:
        try:
            hang_up(agent_leg)
        except TwilioRestException as exc:
            log.warning("interaction %s: agent leg not hung up: %s", interaction.id, scrub(exc.msg))
    return interaction


def cancel_consult(interaction: Interaction) -> Interaction:
    """Call the consult off: the consulted agent's leg hangs up, the customer is back."""
    _consulting(interaction)
    try:
        hang_up(interaction.consult_call_sid)
    except TwilioRestException as exc:
        if exc.status != 404:  # 404: the leg has ended already, which is what we want
            raise _twilio("hang up the consulted agent")(exc) from None
    routing.end_consult(interaction, "consult cancelled")
    # The consult is over whatever Twilio says next; a refusal here leaves the customer on
    # hold (502), which the agent can retry with the hold endpoint.
    return set_hold(interaction, False)


def phone_to_call(customer: Customer, phone: str | None) -> str:
    """The number to call: the one asked for if it is the customer's, else their first."""
    numbers = customer.identity_values("phone")
    if phone is None:
        if not numbers:
            raise APIError(
                422, "The customer has no phone number.", fields={"phone": ["Give a number."]}
            )
        return numbers[0]
    number = normalise_phone(phone)
    if number is None or number not in numbers:
        raise APIError(
            422,
            "That is not one of the customer's phone numbers.",
            fields={"phone": ["Not one of the customer's numbers."]},
        )
    return number


def call_customer(agent: User, customer: Customer, phone: str | None) -> Interaction:
    """Click-to-call: the agent's leg rings first; once they are in the conference, the customer."""
    number = phone_to_call(customer, phone)
    interaction = routing.start_outbound_call(agent, customer.id, number)
    try:
        sid = dial(
            agent.call_address(),
            public_url(f"/webhooks/twilio/voice/outbound/{interaction.id}?leg=agent"),
            public_url(STATUS_CALLBACK),
        )
    except TwilioRestException as exc:
        routing.outbound_failed(interaction)
        raise _twilio("call the agent")(exc) from None
    # The agent's webhook may have recorded the leg already (Twilio can be that quick).
    db.session.refresh(interaction, with_for_update=True)
    interaction.agent_call_sid = sid
    db.session.commit()
    return interaction


def dial_customer(interaction: Interaction) -> None:
    """The agent has joined the outbound call's conference: ring the customer into it."""
    try:
        sid = dial(
            interaction.to_address or "",
            public_url(f"/webhooks/twilio/voice/outbound/{interaction.id}?leg=customer"),
            public_url(STATUS_CALLBACK),
        )
    except TwilioRestException as exc:
        log.warning("interaction %s: customer not dialled: %s", interaction.id, scrub(exc.msg))
        routing.outbound_failed(interaction)
        if interaction.agent_call_sid:
            try:
                hang_up(interaction.agent_call_sid)
            except TwilioRestException:
                log.info("interaction %s: agent leg already gone", interaction.id)
        return
    db.session.refresh(interaction, with_for_update=True)
    interaction.external_id = sid
    db.session.commit()
