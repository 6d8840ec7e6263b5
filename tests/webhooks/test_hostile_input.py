"""Hostile input to the webhooks (hypothesis): correctly signed but arbitrary forms, and
arbitrary bytes as mail. Never a 5xx; a refusal writes nothing."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contact_center.extensions import db
from contact_center.routing.models import Interaction
from contact_center.tickets.models import Ticket
from tests.conftest import ACCOUNT_SID

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TWILIO_PATHS = (
    "/webhooks/twilio/voice",
    "/webhooks/twilio/voice/status",
    "/webhooks/twilio/voice/wait",
    "/webhooks/twilio/voice/wait-option",
    "/webhooks/twilio/voice/enqueue-result",
    "/webhooks/twilio/voice/recording",
    "/webhooks/twilio/voice/transcription",
    "/webhooks/twilio/voice/gather/1/menu",
    "/webhooks/twilio/voice/connect/not-a-reservation",
    "/webhooks/twilio/voice/fallback",
)
# Text as a hostile client sends it: control characters, long runs, non-Latin scripts.
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
fields = st.sampled_from(
    [
        "CallSid",
        "From",
        "To",
        "CallStatus",
        "Digits",
        "SpeechResult",
        "QueueResult",
        "QueueTime",
        "SequenceNumber",
        "CallDuration",
        "RecordingUrl",
        "RecordingSid",
        "RecordingStatus",
        "RecordingDuration",
        "TranscriptionText",
        "Direction",
        "AccountSid",
    ]
)
forms = st.dictionaries(st.one_of(fields, text.filter(bool)), text, max_size=12)


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@FUZZ
@given(path=st.sampled_from(TWILIO_PATHS), form=forms)
def test_signed_arbitrary_twilio_forms_never_break_the_server(twilio_post, path, form):
    form.setdefault("AccountSid", ACCOUNT_SID)
    before = count(Interaction)
    response = twilio_post(path, form)
    assert response.status_code < 500, (path, form, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert count(Interaction) == before
        assert response.get_json()["error"]["code"]


@FUZZ
@given(raw=st.binary(max_size=4000))
def test_arbitrary_bytes_as_mail_are_stored_or_refused_cleanly(post_mail, raw):
    before = count(Ticket)
    response = post_mail(raw)
    assert response.status_code in (200, 400, 413), response.get_data(as_text=True)[:300]
    if response.status_code != 200:
        assert count(Ticket) == before


header_names = st.sampled_from(
    ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Date",
     "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted", "Reply-To"]
)  # fmt: skip


@FUZZ
@given(
    headers=st.lists(
        st.tuples(header_names, text.map(lambda t: t.replace("\n", " "))), max_size=10
    ),
    body=text,
)
def test_mail_with_hostile_headers_is_stored_or_refused_cleanly(post_mail, headers, body):
    raw = "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n" + body
    before = count(Ticket)
    response = post_mail(raw.encode("utf-8", "surrogatepass"))
    assert response.status_code in (200, 400, 413), response.get_data(as_text=True)[:300]
    if response.status_code != 200:
        assert count(Ticket) == before
