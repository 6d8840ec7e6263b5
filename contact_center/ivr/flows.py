"""IVR flows as data: validate a definition, keep versions, render nodes as TwiML.

A flow is JSON: {"name", "start", "voice": {"language"}, "nodes": {id: node}}. Node types:
- say       {text, next}                         speak, then go on
- menu      {prompt, options: {digit: node}, speech?: {phrase: digit}, timeout_s, retries,
             invalid_text?, on_failure}          <Gather> digits and speech
- language  {prompt, options: {digit: code}, min_level, next, timeout_s, retries, on_failure}
             sets the skill lang:<code> the agent needs
- hours     {timezone, schedule: {mon: [["08:00", "20:00"]], ...}, country?, subdivision?,
             open, closed}               closed on the country's public holidays too
            or {calendar: "<name of a stored business calendar>", open, closed}
- enqueue   {queue, skills?, priority?}          into routing, caller waits in <Enqueue>
- ticket_status {prompt, timeout_s, retries, not_found_text?, next, on_failure}
             self-service: the caller keys a ticket number (then #) and hears its status
- voicemail {prompt, max_length_s, transcribe?, next}
             <Record>; the message becomes a ticket with the recording (and transcription)
- transfer  {number, text?}                      <Dial> an outside number
- hangup    {text?}
Input state (which attempt of a menu) travels in the URL, so a retried webhook is answered
the same way and nothing is stored twice.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from twilio.twiml.voice_response import Gather, VoiceResponse

from contact_center.db_types import utcnow
from contact_center.errors import APIError
from contact_center.extensions import db
from contact_center.ivr.models import IvrFlow
from contact_center.sla.calendars import Calendar, place_errors
from contact_center.sla.models import BusinessCalendar
from contact_center.sla.schemas import weekly_windows

log = logging.getLogger(__name__)

DEFAULT_FLOW_PATH = Path(__file__).with_name("default_flow.json")
NODE_ID = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$", error="Node ids use letters, digits, _ and -.")
DIGIT = validate.Regexp(r"^[0-9*#]$", error="Options are single keys: 0-9, * or #.")
# HH:MM; 24:00 closes a window at midnight.
SKILL = validate.Regexp(r"^[A-Za-z0-9_.:-]{1,80}$")


class _Node(Schema):
    class Meta:
        unknown = "raise"

    type = fields.String(required=True)


class SayNode(_Node):
    text = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    next = fields.String(required=True, validate=NODE_ID)


class _GatherNode(_Node):
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    timeout_s = fields.Integer(load_default=5, validate=validate.Range(min=1, max=60))
    retries = fields.Integer(load_default=2, validate=validate.Range(min=0, max=5))
    invalid_text = fields.String(
        load_default="Sorry, I did not get that.", validate=validate.Length(max=500)
    )
    on_failure = fields.String(required=True, validate=NODE_ID)


class MenuNode(_GatherNode):
    options = fields.Dict(
        keys=fields.String(validate=DIGIT),
        values=fields.String(validate=NODE_ID),
        required=True,
        validate=validate.Length(min=1),
    )
    speech = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=50)),
        values=fields.String(validate=DIGIT),
        load_default=dict,
    )

    @validates_schema
    def speech_maps_to_options(self, data, **kwargs):
        unknown = {d for d in data.get("speech", {}).values()} - set(data.get("options", {}))
        if unknown:
            raise ValidationError(f"Speech maps to keys without options: {sorted(unknown)}.")


class LanguageNode(_GatherNode):
    options = fields.Dict(
        keys=fields.String(validate=DIGIT),
        values=fields.String(validate=validate.Regexp(r"^[a-z]{2,3}$")),
        required=True,
        validate=validate.Length(min=1),
    )
    min_level = fields.Integer(load_default=3, validate=validate.Range(min=1, max=5))
    next = fields.String(required=True, validate=NODE_ID)


class HoursNode(_Node):
    # Either a stored business calendar (by name: the SLA module's), or windows inline.
    calendar = fields.String(load_default=None, validate=validate.Length(min=1, max=80))
    timezone = fields.String(load_default=None)
    schedule = weekly_windows(required=False)
    country = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{2}$"))
    subdivision = fields.String(load_default=None, validate=validate.Length(min=1, max=10))
    open = fields.String(required=True, validate=NODE_ID)
    closed = fields.String(required=True, validate=NODE_ID)

    @validates_schema
    def one_calendar(self, data, **kwargs):
        if data.get("calendar"):
            if data.get("timezone") or data.get("schedule") is not None:
                raise ValidationError("Name a calendar, or give timezone and schedule: not both.")
            if _stored_calendar(data["calendar"]) is None:
                raise ValidationError("No business calendar has that name.", "calendar")
            return
        if data.get("schedule") is None:  # {} is a schedule: always closed
            raise ValidationError("Name a calendar, or give timezone and schedule.", "schedule")
        errors = place_errors(data)
        if errors:
            raise ValidationError(errors)


class EnqueueNode(_Node):
    queue = fields.String(required=True, validate=validate.Length(min=1, max=80))
    skills = fields.Dict(
        keys=fields.String(validate=SKILL),
        values=fields.Integer(validate=validate.Range(min=1, max=5)),
        load_default=dict,
    )
    priority = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10))


class TicketStatusNode(_GatherNode):
    not_found_text = fields.String(
        load_default="Sorry, we could not find a ticket with that number.",
        validate=validate.Length(min=1, max=500),
    )
    next = fields.String(required=True, validate=NODE_ID)


class VoicemailNode(_Node):
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    max_length_s = fields.Integer(load_default=120, validate=validate.Range(min=5, max=600))
    # Twilio transcribes recordings of up to two minutes.
    transcribe = fields.Boolean(load_default=True)
    next = fields.String(required=True, validate=NODE_ID)


class TransferNode(_Node):
    number = fields.String(required=True, validate=validate.Regexp(r"^\+[1-9][0-9]{6,14}$"))
    text = fields.String(load_default=None, validate=validate.Length(max=2000))


class HangupNode(_Node):
    text = fields.String(load_default=None, validate=validate.Length(max=2000))


NODE_SCHEMAS: dict[str, type[Schema]] = {
    "say": SayNode,
    "menu": MenuNode,
    "language": LanguageNode,
    "hours": HoursNode,
    "enqueue": EnqueueNode,
    "ticket_status": TicketStatusNode,
    "voicemail": VoicemailNode,
    "transfer": TransferNode,
    "hangup": HangupNode,
}
# Fields of each node type that name another node.
LINKS = {
    "say": ("next",),
    "menu": ("on_failure",),
    "language": ("next", "on_failure"),
    "hours": ("open", "closed"),
    "ticket_status": ("next", "on_failure"),
    "voicemail": ("next",),
}


class FlowSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_-]{1,80}$"))
    start = fields.String(required=True, validate=NODE_ID)
    voice = fields.Dict(load_default=lambda: {"language": "en-GB"})
    nodes = fields.Dict(keys=fields.String(validate=NODE_ID), values=fields.Dict(), required=True)


def validate_flow(definition: Any) -> dict[str, Any]:
    """A checked, normalised flow; raises APIError 422 naming every problem."""
    if not isinstance(definition, dict):
        raise APIError(422, "A flow is a JSON object.", fields={"_schema": ["Not an object."]})
    try:
        flow = FlowSchema().load(definition)
    except ValidationError as exc:
        raise APIError(422, "The flow is invalid.", fields=exc.messages) from None
    errors: dict[str, Any] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for node_id, node in flow["nodes"].items():
        schema = NODE_SCHEMAS.get(node.get("type"))
        if schema is None:
            errors[node_id] = {"type": [f"Must be one of {', '.join(NODE_SCHEMAS)}."]}
            continue
        try:
            nodes[node_id] = schema().load(node)
        except ValidationError as exc:
            errors[node_id] = exc.messages
    for node_id, node in nodes.items():
        targets = [node[f] for f in LINKS.get(node["type"], ())]
        if node["type"] == "menu":
            targets += list(node["options"].values())
        missing = sorted({t for t in targets if t not in flow["nodes"]})
        if missing:
            errors.setdefault(node_id, {})["links"] = [f"Unknown nodes: {', '.join(missing)}."]
    fields: dict[str, Any] = {"nodes": errors} if errors else {}
    if flow["start"] not in flow["nodes"]:  # named beside nodes: a node may be called "start"
        fields["start"] = [f"Unknown node {flow['start']!r}."]
    if fields:
        raise APIError(422, "The flow is invalid.", fields=fields)
    return {**flow, "nodes": nodes}


def save_flow(definition: Any, *, activate: bool, author_id: int | None = None) -> IvrFlow:
    """Store a validated flow as the next version of its name; optionally make it active."""
    flow = validate_flow(definition)
    latest = db.session.scalar(
        sa.select(sa.func.max(IvrFlow.version)).where(IvrFlow.name == flow["name"])
    )
    record = IvrFlow(
        name=flow["name"], version=(latest or 0) + 1, definition=flow, created_by_id=author_id
    )
    db.session.add(record)
    db.session.flush()
    if activate:
        activate_flow(record)
    db.session.commit()
    return record


def activate_flow(record: IvrFlow) -> None:
    """Make one flow version the one new calls enter (calls in progress keep theirs)."""
    db.session.execute(sa.update(IvrFlow).where(IvrFlow.id != record.id).values(is_active=False))
    record.is_active = True
    db.session.commit()
    forget_entry()


def active_flow() -> IvrFlow | None:
    return db.session.scalar(sa.select(IvrFlow).where(IvrFlow.is_active).limit(1))


@dataclass(frozen=True)
class FlowVersion:
    """A flow version as new calls need it: its id and definition (no database row)."""

    id: int
    definition: dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """What a new call meets first: the emergency closure, else the active flow, if any."""

    closure: dict[str, Any]
    flow: FlowVersion | None


ENTRY_CACHE_S = 2.0  # a change reaches every web process within this time


def call_entry() -> Entry:
    """The emergency switch and the active flow, read at most every ENTRY_CACHE_S per process.

    Every incoming call needs both; reading them from the database per call costs more
    than the rest of answering it.
    """
    cached = current_app.extensions.get("ivr_entry")
    now = time.monotonic()
    if cached is not None and now - cached[0] < ENTRY_CACHE_S:
        return cached[1]
    record = active_flow()
    flow = FlowVersion(record.id, record.definition) if record is not None else None
    entry = Entry(emergency_closure(), flow)
    current_app.extensions["ivr_entry"] = (now, entry)
    return entry


def forget_entry() -> None:
    """Drop this process's cached entry after a change (other processes follow shortly)."""
    current_app.extensions.pop("ivr_entry", None)


def load_default_flow(activate: bool = True) -> IvrFlow:
    """Store the shipped default flow (all node kinds) unless an identical version exists."""
    definition = json.loads(DEFAULT_FLOW_PATH.read_text(encoding="utf-8"))
    normalised = validate_flow(definition)
    existing = db.session.scalars(sa.select(IvrFlow).where(IvrFlow.name == normalised["name"]))
    for record in existing:
        if record.definition == normalised:
            if activate and not record.is_active:
                activate_flow(record)
            return record
    return save_flow(definition, activate=activate)


EMERGENCY_KEY = "ivr.emergency"
EMERGENCY_DEFAULT = {
    "enabled": False,
    "message": "We are closed because of an emergency. Please call again later. Goodbye.",
}


def emergency_closure() -> dict[str, Any]:
    """The emergency switch: when enabled every new caller hears its message."""
    from contact_center.system_settings import get_setting

    return get_setting(EMERGENCY_KEY, EMERGENCY_DEFAULT)


def _stored_calendar(name: str) -> BusinessCalendar | None:
    return db.session.scalar(sa.select(BusinessCalendar).where(BusinessCalendar.name == name))


def is_open(node: dict[str, Any], at: datetime | None = None) -> bool:
    """Whether an hours node's calendar (a stored business calendar, or weekly windows and
    the public holidays of its country when it names one) is open at `at` (now by default)."""
    if node.get("calendar"):
        stored = _stored_calendar(node["calendar"])
        if stored is None:  # renamed since the flow was loaded: better answered than shut
            log.warning(
                "IVR hours node names unknown calendar %r: treated as open", node["calendar"]
            )
            return True
        calendar = stored.calendar()
    else:
        calendar = Calendar(
            node["timezone"],
            node["schedule"],
            country=node.get("country"),
            subdivision=node.get("subdivision"),
        )
    return calendar.is_open(at or utcnow())


class Renderer:
    """Builds the TwiML of one flow version's nodes; URLs carry the version and the attempt."""

    def __init__(self, record: IvrFlow | FlowVersion, url_for_node) -> None:
        self.record = record
        self.flow = record.definition
        self.language = (self.flow.get("voice") or {}).get("language", "en-GB")
        self.url_for_node = url_for_node  # (version id, node id, **query) -> absolute URL

    def node(self, node_id: str) -> dict[str, Any] | None:
        return self.flow["nodes"].get(node_id)

    def say(self, response: VoiceResponse, text: str | None) -> None:
        if text:
            response.say(text, language=self.language)

    def gather(
        self,
        node_id: str,
        node: dict[str, Any],
        attempt: int,
        preface: str | None = None,
        response: VoiceResponse | None = None,
    ) -> str:
        """A <Gather> for a menu, language or ticket number; its action carries the attempt."""
        response = response if response is not None else VoiceResponse()
        self.say(response, preface)
        hints = ", ".join(node.get("speech", {}))
        # A menu takes one key; a ticket number runs until # (or the timeout).
        length = {"finish_on_key": "#"} if node["type"] == "ticket_status" else {"num_digits": 1}
        gather = Gather(
            input="dtmf speech" if node.get("speech") else "dtmf",
            **length,
            timeout=node["timeout_s"],
            action=self.url_for_node(self.record.id, node_id, attempt=attempt),
            method="POST",
            action_on_empty_result=True,
            language=self.language,
            **({"hints": hints} if hints else {}),
        )
        gather.say(node["prompt"], language=self.language)
        response.append(gather)
        return str(response)
