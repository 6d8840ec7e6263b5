"""`/webhooks/twilio/voice/...`: signed Twilio Voice webhooks.

Every request is checked against X-Twilio-Signature first (403 otherwise), then validated,
then applied once: a retry gets the stored answer and changes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator

from contact_center.customers.services import mask
from contact_center.db_types import utcnow
from contact_center.errors import APIError, error_response
from contact_center.extensions import db
from contact_center.ivr import control, twiml
from contact_center.ivr import flows as ivr_flows
from contact_center.ivr import services as ivr
from contact_center.ivr.calls import public_url
from contact_center.ivr.models import IvrFlow
from contact_center.routing import arrivals
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue, Reservation
from webhooks.deferred import defer_when_database_down, replaying
from webhooks.idempotency import claim, replay

log = logging.getLogger(__name__)
bp = Blueprint("twilio_webhooks", __name__, url_prefix="/webhooks/twilio")

TWIML = "text/xml; charset=utf-8"
HOLD_GREETING = "Thank you for calling. Please hold while we connect you to an agent."
RECORDING_URL = "/webhooks/twilio/voice/recording"
SURVEY_URL = "/webhooks/twilio/voice/survey"
TRANSCRIPTION_URL = "/webhooks/twilio/voice/transcription"
CALL_SID = validate.Regexp(r"^CA[0-9a-fA-F]{32}$", error="Not a Twilio CallSid.")
CALL_STATUSES = (
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
)
QUEUE_RESULTS = (
    "bridged",
    "bridging-in-process",
    "queue-full",
    "redirected",
    "hangup",
    "error",
    "leave",
    "system-error",
)


class _TwilioForm(Schema):
    class Meta:
        unknown = EXCLUDE  # Twilio sends many parameters; we read the ones we need.

    CallSid = fields.String(required=True, validate=CALL_SID)


class IncomingCallForm(_TwilioForm):
    From = fields.String(load_default=None, validate=validate.Length(max=64))
    To = fields.String(load_default=None, validate=validate.Length(max=64))


# One instance for every request: a schema is stateless once built, and building one
# (copying its declared fields) costs more than the load itself.
INCOMING_CALL_FORM = IncomingCallForm()


class CallStatusForm(_TwilioForm):
    CallStatus = fields.String(required=True, validate=validate.OneOf(CALL_STATUSES))
    SequenceNumber = fields.Integer(load_default=None, validate=validate.Range(min=0))
    CallDuration = fields.Integer(load_default=None, validate=validate.Range(min=0))


class EnqueueResultForm(_TwilioForm):
    QueueResult = fields.String(required=True, validate=validate.OneOf(QUEUE_RESULTS))


class ConnectArgs(Schema):
    leg = fields.String(
        required=True, validate=validate.OneOf(("caller", "agent"))
    )  # caller = customer


@bp.errorhandler(ValidationError)
def malformed(error: ValidationError):
    """A request that is not what Twilio sends (a missing CallSid, an unknown status): 400."""
    fields_ = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return error_response(
        APIError(400, "The request is not a valid Twilio webhook.", fields=fields_)
    )


class OutboundArgs(Schema):
    leg = fields.String(required=True, validate=validate.OneOf(("agent", "customer")))


def signed(view: Callable) -> Callable:
    """Refuse (403) a request whose X-Twilio-Signature does not match our auth token."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if replaying() is not None:
            return view(*args, **kwargs)  # checked when it was received, before it was kept
        token = current_app.config["TWILIO_AUTH_TOKEN"]
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token:
            raise APIError(
                403,
                "Voice webhooks are disabled: TWILIO_AUTH_TOKEN is not set.",
                code="bad_signature",
            )
        url = public_url(request.full_path.rstrip("?"))
        if not signature or not RequestValidator(token).validate(url, request.form, signature):
            raise APIError(403, "Missing or invalid X-Twilio-Signature.", code="bad_signature")
        return view(*args, **kwargs)

    return wrapper


def _twiml(body: str) -> Response:
    return Response(body, content_type=TWIML)


def _fallback_body() -> str:
    return twiml.fallback_response(
        action_url=public_url("/webhooks/twilio/voice/fallback?step=recorded"),
        recording_callback=public_url(RECORDING_URL),
        transcribe_callback=public_url(TRANSCRIPTION_URL),
    )


def _fallback_answer() -> Response:
    """What the fallback URL answers: an apology and a voicemail (no database needed)."""
    return _twiml(_fallback_body())


def _empty_answer() -> Response:
    return _twiml(twiml.empty_response())


CONNECT_UNAVAILABLE = "Sorry, this call cannot be connected right now. Goodbye."
OUTBOUND_UNAVAILABLE = (
    "Sorry, the call cannot be placed right now. Please try again in a few minutes. Goodbye."
)
SURVEY_THANKS = "Thank you for your rating. Goodbye."
SURVEY_GOODBYE = "Thank you for calling. Goodbye."


def _leg_is(leg: str) -> Callable[[], bool]:
    return lambda: request.args.get("leg") == leg


def _connect_outage_answer() -> Response:
    """No database to bridge with: the caller gets the fallback (an apology and a voicemail),
    the agent's leg an apology."""
    if _leg_is("caller")():
        return _fallback_answer()
    return _twiml(twiml.say_and_hang_up(CONNECT_UNAVAILABLE))


def _outbound_outage_answer() -> Response:
    """An outbound call while the database is down. The customer answered a call whose agent
    is already in the conference, whose name needs only the id: they join it. The agent's
    leg cannot ring the customer (their number is in the database): an apology."""
    if _leg_is("customer")():
        conference = control.conference_name_of(request.view_args["interaction_id"])
        return _twiml(twiml.conference_response(conference, ends_on_exit=True))
    return _twiml(twiml.say_and_hang_up(OUTBOUND_UNAVAILABLE))


# A caller's call, its end and its recordings are kept and replayed (see webhooks/deferred);
# a step of the IVR or of the hold loop is not: the caller has moved on to the fallback.
deferred_call = defer_when_database_down(_fallback_answer)
deferred_callback = defer_when_database_down(_empty_answer)
fallback_only = defer_when_database_down(_fallback_answer, keep=False)
# Only the caller's leg is kept: its replay ends the call as the fallback took it.
deferred_connect = defer_when_database_down(_connect_outage_answer, keep=_leg_is("caller"))
# Only the customer's leg is kept: its replay records the leg that joined.
deferred_outbound = defer_when_database_down(_outbound_outage_answer, keep=_leg_is("customer"))


def _replayed_to_fallback(interaction: Interaction | None, call_sid: str) -> Response:
    """The replay of a caller's leg kept while the database was down: the caller heard the
    fallback then, so their call ends there (routing.caller_sent_to_fallback)."""
    if interaction is not None and interaction.external_id == call_sid:
        routing.caller_sent_to_fallback(interaction)
    return _fallback_answer()


def _apply_once(key: str, body: str, apply: Callable[[], Any]) -> Response:
    """Apply a delivery once: its answer is stored with its changes and replayed to retries."""
    if (earlier := replay(key)) is not None or (earlier := claim(key, body, TWIML)) is not None:
        return earlier
    apply()
    db.session.commit()
    return _twiml(body)


def _commit_once(key: str, body: str, after: Callable[[], Any] | None) -> Response:
    """Store the answer with the staged changes, then do the routing work."""
    if (earlier := claim(key, body, TWIML)) is not None:
        return earlier
    _commit_keeping_values()
    if after is not None:
        _after_commit(after)
    return _twiml(body)


def _commit_keeping_values() -> None:
    """Commit without expiring the session's objects: the routing work after the commit
    reads what this request has just written, so reloading it would only cost round trips.
    (Routing locks and refreshes whatever it must decide on, as with any stale object.)"""
    session = db.session()
    expire_on_commit = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire_on_commit


def _after_commit(action: Callable[[], Any]) -> None:
    """Routing work after the data is committed: if Redis fails, a rebuild recovers it."""
    try:
        action()
    except redis.RedisError:
        log.exception("routing state not updated; `flask routing rebuild` will recover it")


@bp.post("/voice")
@signed
@deferred_call
def incoming_call():
    """A call arrives: record it, identify the caller, then the IVR or straight to the queue.

    A retried delivery is not looked up first: a call and its answer are committed together
    under a unique CallSid and answer key, so a retry finds out when they are written, and
    then rolls back and gets the stored answer. First deliveries save a query.
    """
    form = INCOMING_CALL_FORM.load(request.form)
    key = f"voice:{form['CallSid']}"
    if (kept := replaying()) is not None:
        return _record_deferred_call(form, key, kept.received_at)
    entry = ivr_flows.call_entry()
    closure, flow = entry.closure, entry.flow
    ivr_path = closure["enabled"] or flow is not None
    queue = None if ivr_path else routing.default_queue()
    if queue is not None and arrivals.available(queue):
        answer = _unknown_caller_to_queue(form, key, queue)
        if answer is not None:
            return answer
    try:
        # Staged, not yet written: the call and its answer go to the database in one flush
        # (in `claim`, or earlier when the IVR's own queries flush them).
        interaction = routing.receive_call(
            form["CallSid"],
            form["From"],
            form["To"],
            ivr_flow_id=flow.id if flow is not None and not closure["enabled"] else None,
            queue_now=not ivr_path,
            queue=queue,
        )
        if closure["enabled"]:
            body, after = ivr.closed_for_emergency(interaction, closure["message"])
        elif flow is not None:
            body, after = ivr.enter(interaction, flow, flow.definition["start"])
        else:
            body = _hold_in_queue(queue)
            after = functools.partial(routing.enqueue, interaction)
    except IntegrityError:
        # A concurrent first delivery of the same call won: answer as it did.
        db.session.rollback()
        if (earlier := replay(key)) is not None:
            return earlier
        raise
    answer = _commit_once(key, body, after)
    if sa.inspect(interaction).persistent:  # else a concurrent delivery answered first
        log.info(
            "call %s from %s recorded as interaction %s",
            form["CallSid"],
            mask(form["From"]),
            interaction.id,
        )
    return answer


def _record_deferred_call(form: dict[str, Any], key: str, received_at: float) -> Response:
    """A call kept while the database was down, now recorded: the caller heard the fallback
    (an apology and a voicemail), not our queue, so it ends there and is never routed now.
    A recording it left makes it a voicemail when that callback is replayed in turn."""
    body = _fallback_body()
    if (earlier := replay(key)) is not None:
        return earlier
    # A callback that reached us live after the outage may have recorded the call already.
    if routing.interaction_by_external_id(form["CallSid"]) is None:
        at = datetime.fromtimestamp(received_at, UTC)
        interaction = routing.receive_call(
            form["CallSid"], form["From"], form["To"], queue_now=False
        )
        interaction.status = "ended"
        interaction.outcome = "abandoned"
        interaction.leave_reason = "fallback"
        interaction.created_at = interaction.ended_at = at
    try:
        return _commit_once(key, body, None)
    except IntegrityError:
        # A delivery of the same call recorded it meanwhile: it is recorded.
        db.session.rollback()
        return replay(key) or _twiml(body)


def _hold_in_queue(queue: Queue) -> str:
    """The <Enqueue> answer for a queue: the same for every call, so built once per process."""
    answers = current_app.extensions.setdefault("hold_twiml", {})
    body = answers.get(queue.name)
    if body is None:
        body = answers[queue.name] = ivr.hold_in_queue(queue.name, HOLD_GREETING)
    return body


def _unknown_caller_to_queue(form: dict[str, Any], key: str, queue: Queue) -> Response | None:
    """The one-statement path (see routing.arrivals); None when the caller is a customer."""
    body = _hold_in_queue(queue)
    try:
        interaction = arrivals.record_unknown_caller(
            form["CallSid"],
            form["From"],
            form["To"],
            queue,
            answer_key=key,
            answer_body=body,
            content_type=TWIML,
        )
    except IntegrityError:
        # A retry, or a concurrent first delivery that won: answer as it was answered.
        if (earlier := replay(key)) is not None:
            return earlier
        raise
    if interaction is None:
        return None
    _after_commit(functools.partial(routing.enqueue, interaction))
    log.info(
        "call %s from %s recorded as interaction %s",
        form["CallSid"],
        mask(form["From"]),
        interaction.id,
    )
    return _twiml(body)


@bp.post("/voice/wait")
@signed
@fallback_only
def wait():
    """The caller's hold loop: place and estimated wait, the options, hold music.

    Past the queue's maximum wait the caller leaves for voicemail or a callback.
    """
    form = _TwilioForm().load(request.form)
    interaction = routing.interaction_by_external_id(form["CallSid"])
    if interaction is None or interaction.queue is None or interaction.status != "queued":
        return _twiml(twiml.wait_response(None))
    queue = interaction.queue
    waited = (utcnow() - (interaction.enqueued_at or interaction.created_at)).total_seconds()
    if queue.max_wait_s and waited >= queue.max_wait_s:
        interaction.leave_reason = queue.max_wait_action
        db.session.commit()
        return _twiml(twiml.leave_queue_response())
    estimate = routing.estimate(queue, interaction)
    return _twiml(
        twiml.wait_response(
            estimate["position"],
            estimate["estimated_wait_s"],
            options_url=public_url("/webhooks/twilio/voice/wait-option"),
        )
    )


@bp.post("/voice/wait-option")
@signed
@fallback_only
def wait_option():
    """A key pressed while waiting: 1 a callback (keeping the place), 2 a voicemail."""
    form = GatherForm().load(request.form)
    choice = {"1": "callback", "2": "voicemail"}.get((form["Digits"] or "")[:1])
    interaction = routing.interaction_by_external_id(form["CallSid"])
    if choice is None or interaction is None or interaction.status != "queued":
        return _twiml(twiml.empty_response())  # back to the hold loop
    interaction.leave_reason = choice
    db.session.commit()
    return _twiml(twiml.leave_queue_response())


@bp.post("/voice/enqueue-result")
@signed
@deferred_call
def enqueue_result():
    """How the caller's wait ended: hung up (abandon), or left for a callback or voicemail."""
    form = EnqueueResultForm().load(request.form)
    key = f"enqueue-result:{form['CallSid']}"
    if (earlier := replay(key)) is not None:
        return earlier
    interaction = routing.interaction_by_external_id(form["CallSid"])
    leaving = (
        form["QueueResult"] == "leave"
        and interaction is not None
        and interaction.status == "queued"
        and interaction.leave_reason in ("callback", "voicemail")
    )
    if leaving:
        body, apply = _leave_for(interaction)
    else:
        body = twiml.empty_response()
        apply = functools.partial(_wait_ended, form["CallSid"], form["QueueResult"])
    return _apply_once(key, body, apply)


def _leave_for(interaction) -> tuple[str, Callable[[], Any]]:
    """The caller chose (or was given, at max wait) a callback or a voicemail."""
    if interaction.leave_reason == "callback":
        body = twiml.say_and_hang_up(
            "Thank you. We will call you back on this number as soon as an agent is free, "
            "and you keep your place in the queue. Goodbye."
        )
        return body, functools.partial(routing.request_callback, interaction)
    body = twiml.voicemail_response(
        public_url("/webhooks/twilio/voice/fallback?step=recorded"),
        public_url(RECORDING_URL),
        "Please leave your message after the tone.",
        public_url(TRANSCRIPTION_URL),
    )
    return body, functools.partial(
        routing.leave_queue, interaction, "voicemail", "caller left a message"
    )


def _wait_ended(call_sid: str, result: str) -> None:
    if result in ("hangup", "leave", "error", "system-error", "queue-full"):
        routing.call_status(call_sid, "canceled", None)


@bp.post("/voice/connect/<reservation_id>")
@signed
@deferred_connect
def connect(reservation_id: str):
    """TwiML that puts the caller's or the agent's leg into the interaction's conference."""
    leg = ConnectArgs().load(request.args)["leg"]
    form = _TwilioForm().load(request.form)
    reservation = db.session.get(Reservation, reservation_id)
    if replaying() is not None:  # the caller heard the fallback, not their agent
        return _replayed_to_fallback(reservation and reservation.interaction, form["CallSid"])
    if reservation is None or reservation.status != "accepted":
        return _twiml(twiml.say_and_hang_up("Sorry, this call can no longer be connected."))
    interaction = reservation.interaction
    queue = interaction.queue
    whisper = consent = None
    if leg == "caller":
        routing.interaction_joined(interaction)
        if queue is not None and queue.record_calls:
            consent = queue.recording_consent or control.DEFAULT_CONSENT
    else:
        # Only the agent hears this, before joining: who is calling and through which queue.
        who = interaction.customer.name if interaction.customer else "an unknown caller"
        whisper = f"Call from {who}, {queue.name if queue else 'the'} queue."
    recorded = queue is not None and queue.record_calls
    survey = leg == "caller" and queue is not None and queue.post_call_survey
    return _twiml(
        twiml.conference_response(
            control.conference_name(interaction),
            ends_on_exit=True,
            whisper=whisper,
            consent=consent,
            recording_callback=(
                public_url(f"{RECORDING_URL}?interaction={interaction.id}") if recorded else None
            ),
            after_url=public_url(f"{SURVEY_URL}/{interaction.id}") if survey else None,
        )
    )


def _survey_rating() -> int | None:
    """The rating this survey request carries (a 1-5 key), if any."""
    digits = request.form.get("Digits") or ""
    return int(digits[:1]) if digits[:1] in ("1", "2", "3", "4", "5") else None


def _survey_prompt(interaction_id: int) -> str | None:
    """The survey's question (first, or again after a wrong key) or its goodbye; None when
    the request carries a rating. Needs no database."""
    digits = GatherForm().load(request.form)["Digits"]
    attempt = GatherArgs().load(request.args)["attempt"]
    if digits is None:  # the conference ended: ask
        return twiml.survey_question(public_url(f"{SURVEY_URL}/{interaction_id}"))
    if _survey_rating() is not None:
        return None
    if attempt > 1:
        return twiml.say_and_hang_up(SURVEY_GOODBYE)
    retry_url = public_url(f"{SURVEY_URL}/{interaction_id}?attempt=2")
    return twiml.survey_question(retry_url, "Sorry, please press 1 to 5.")


def _survey_outage_answer() -> Response:
    """The survey goes on without the database; a rating is kept and recorded on replay."""
    prompt = _survey_prompt(request.view_args["interaction_id"])
    return _twiml(prompt if prompt is not None else twiml.say_and_hang_up(SURVEY_THANKS))


@bp.post("/voice/survey/<int:interaction_id>")
@signed
@defer_when_database_down(_survey_outage_answer, keep=lambda: _survey_rating() is not None)
def post_call_survey(interaction_id: int):
    """The caller's rating after the agent hung up: 1-5 on the keypad, kept on the call."""
    form = GatherForm().load(request.form)
    GatherArgs().load(request.args)
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or interaction.external_id != form["CallSid"]:
        return _twiml(twiml.say_and_hang_up(SURVEY_GOODBYE))
    prompt = _survey_prompt(interaction_id)
    if prompt is not None:
        return _twiml(prompt)
    score = _survey_rating()

    def rate() -> None:
        if interaction.satisfaction is None:
            interaction.satisfaction = score

    return _apply_once(f"survey:{form['CallSid']}", twiml.say_and_hang_up(SURVEY_THANKS), rate)


@bp.post("/voice/outbound/<int:interaction_id>")
@signed
@deferred_outbound
def outbound(interaction_id: int):
    """TwiML for an agent's outbound call: the agent joins the conference, then the customer.

    The agent's leg answering is what rings the customer, so a customer never picks up to
    an empty line; a retried delivery gets the same TwiML and dials no one twice.
    """
    leg = OutboundArgs().load(request.args)["leg"]
    form = _TwilioForm().load(request.form)
    key = f"outbound:{form['CallSid']}:{leg}"
    if (earlier := replay(key)) is not None:
        return earlier
    interaction = db.session.get(Interaction, interaction_id, with_for_update=True)
    # The leg's CallSid may not be recorded yet: Twilio can call back before dial() returns.
    known = None
    if interaction is not None:
        known = interaction.agent_call_sid if leg == "agent" else interaction.external_id
    if (
        interaction is None
        or interaction.direction != "outbound"
        or interaction.status != "connecting"
        or known not in (None, form["CallSid"])
    ):
        return _commit_once(
            key, twiml.say_and_hang_up("Sorry, this call can no longer be connected."), None
        )
    conference = control.conference_name(interaction)
    if leg == "agent":
        interaction.agent_call_sid = form["CallSid"]
        who = interaction.customer.name if interaction.customer else "the customer"
        body = twiml.conference_response(conference, ends_on_exit=True, whisper=f"Calling {who}.")
        after = (
            None
            if interaction.external_id
            else functools.partial(control.dial_customer, interaction)
        )
        return _commit_once(key, body, after)
    interaction.external_id = form["CallSid"]
    body = twiml.conference_response(conference, ends_on_exit=True)
    return _commit_once(key, body, functools.partial(routing.interaction_joined, interaction))


@bp.post("/voice/requeue/<int:interaction_id>")
@signed
@deferred_call
def requeue(interaction_id: int):
    """TwiML for a transferred caller: wait again in the interaction's (new) queue."""
    form = _TwilioForm().load(request.form)
    interaction = db.session.get(Interaction, interaction_id)
    if replaying() is not None:  # the caller heard the fallback, not the new queue
        return _replayed_to_fallback(interaction, form["CallSid"])
    # "offered": the transfer's target may be ringing before Twilio fetches this TwiML.
    if (
        interaction is None
        or interaction.queue is None
        or interaction.status not in ("queued", "offered")
    ):
        return _twiml(twiml.say_and_hang_up("Sorry, we could not transfer your call."))
    return _twiml(ivr.hold_in_queue(interaction.queue.name, "Please hold while we transfer you."))


class GatherForm(_TwilioForm):
    Digits = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9*#]{0,20}$"))
    SpeechResult = fields.String(load_default=None, validate=validate.Length(max=500))
    RecordingUrl = fields.Url(load_default=None, validate=validate.Length(max=500))


class GatherArgs(Schema):
    step = fields.String(load_default=None, validate=validate.OneOf(("enter", "recorded")))
    attempt = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10))


RECORDING_SID = validate.Regexp(r"^RE[0-9a-fA-F]{32}$", error="Not a Twilio RecordingSid.")


class RecordingForm(Schema):
    class Meta:
        unknown = EXCLUDE

    # A conference's recording has no CallSid: its URL names the interaction instead.
    CallSid = fields.String(load_default=None, validate=CALL_SID)
    RecordingSid = fields.String(required=True, validate=RECORDING_SID)
    RecordingUrl = fields.Url(required=True, validate=validate.Length(max=500))
    RecordingStatus = fields.String(
        required=True,
        validate=validate.OneOf(
            ("in-progress", "paused", "stopped", "completed", "absent", "failed")
        ),
    )


class RecordingArgs(Schema):
    interaction = fields.Integer(load_default=None, validate=validate.Range(min=1))


class TranscriptionForm(_TwilioForm):
    RecordingSid = fields.String(required=True, validate=RECORDING_SID)
    TranscriptionStatus = fields.String(
        required=True, validate=validate.OneOf(("completed", "failed"))
    )
    TranscriptionText = fields.String(load_default="", validate=validate.Length(max=20000))


@bp.post("/voice/gather/<int:flow_version>/<node>")
@signed
@fallback_only
def gather(flow_version: int, node: str):
    """IVR input (digits, speech, silence) or the next step of a flow version."""
    form = GatherForm().load(request.form)
    args = GatherArgs().load(request.args)
    fingerprint = hashlib.sha256(
        "|".join(
            str(v)
            for v in (
                flow_version,
                node,
                args["step"],
                args["attempt"],
                form["Digits"],
                form["SpeechResult"],
            )
        ).encode()
    ).hexdigest()[:32]
    key = f"gather:{form['CallSid']}:{fingerprint}"
    if (earlier := replay(key)) is not None:
        return earlier
    interaction = routing.interaction_by_external_id(form["CallSid"])
    if interaction is None:
        return _twiml(twiml.say_and_hang_up("Sorry, we could not find your call. Goodbye."))
    flow = db.session.get(IvrFlow, flow_version) or ivr_flows.active_flow()
    if flow is None:
        body, after = ivr.enter_default_queue(interaction)
    elif args["step"] == "enter":
        body, after = ivr.enter(interaction, flow, node)
    elif args["step"] == "recorded":
        body, after = ivr.recorded(interaction, flow, node, form["RecordingUrl"])
    else:
        body, after = ivr.take_input(
            interaction,
            flow,
            node,
            attempt=args["attempt"],
            digits=form["Digits"],
            speech=form["SpeechResult"],
        )
    return _commit_once(key, body, after)


@bp.post("/voice/recording")
@signed
@deferred_callback
def recording():
    """Recording status callbacks: a finished recording's URL is kept; a voicemail's is a ticket."""
    form = RecordingForm().load(request.form)
    interaction_id = RecordingArgs().load(request.args)["interaction"]
    if form["CallSid"] is None and interaction_id is None:
        raise ValidationError({"CallSid": ["Missing data for required field."]})

    def apply() -> None:
        if form["RecordingStatus"] != "completed":
            return
        if interaction_id is not None:
            control.attach_call_recording(interaction_id, form["RecordingUrl"])
        else:
            ivr.attach_recording(form["CallSid"], form["RecordingUrl"])

    return _apply_once(
        f"recording:{form['RecordingSid']}:{form['RecordingStatus']}", twiml.empty_response(), apply
    )


@bp.post("/voice/transcription")
@signed
@deferred_callback
def transcription():
    """Twilio's transcription of a voicemail: the text joins the voicemail on its ticket."""
    form = TranscriptionForm().load(request.form)

    def apply() -> None:
        if form["TranscriptionStatus"] == "completed" and form["TranscriptionText"]:
            ivr.attach_transcription(form["CallSid"], form["TranscriptionText"])

    return _apply_once(
        f"transcription:{form['RecordingSid']}:{form['TranscriptionStatus']}",
        twiml.empty_response(),
        apply,
    )


@bp.post("/voice/fallback")
@signed
def fallback():
    """Twilio's fallback URL: an apology and a voicemail, touching no database and no Redis.

    Only the signature check runs (it needs configuration alone), so this answers even
    while the database or Redis is down; the recording's callback is stored once they are back.
    """
    if request.args.get("step") == "recorded":
        return _twiml(twiml.say_and_hang_up("Thank you. We will call you back. Goodbye."))
    return _fallback_answer()


BROWSER_CALL_REFUSED = "Calls to customers start from their record in the agent console. Goodbye."


@bp.post("/voice/client")
@signed
def browser_call():
    """The voice URL of the softphone's TwiML app (TWILIO_TWIML_APP_SID): a call the browser
    places itself. Outbound calls go through click-to-call (a customer's own number, from
    TWILIO_CALLER_ID), so this dials no one: an agent cannot reach any number from here."""
    form = _TwilioForm().load(request.form)
    log.info("browser-originated call %s refused: calls start from a customer", form["CallSid"])
    return _twiml(twiml.say_and_hang_up(BROWSER_CALL_REFUSED))


@bp.post("/voice/status")
@signed
@deferred_callback
def call_status():
    """Call status callbacks: completion ends the interaction, an early end abandons it."""
    form = CallStatusForm().load(request.form)
    return _apply_once(
        f"status:{form['CallSid']}:{form['CallStatus']}:{form['SequenceNumber']}",
        twiml.empty_response(),
        lambda: routing.call_status(form["CallSid"], form["CallStatus"], form["CallDuration"]),
    )
