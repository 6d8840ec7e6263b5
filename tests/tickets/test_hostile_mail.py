"""The mail parser on hostile bytes (hypothesis): a parsed message or MalformedMail, never
another exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contact_center.tickets import mail

MIME_PARTS = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
        b"Content-Type: text/html\r\n\r\n",
        b"Content-Type: text/plain; charset=unknown-8bit\r\n\r\n",
        b"Content-Transfer-Encoding: base64\r\n\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n",
        b"Content-Type: message/delivery-status\r\n\r\n",
        b"Subject: =?utf-8?b?invalid base64?=\r\n",
        b"From: <<<@>>>\r\nMessage-ID: <>\r\n",
        b"--XX--\r\n",
        b"<html><script>alert(1)</script><p>hi</p>",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.one_of(MIME_PARTS, st.binary(max_size=200)), max_size=8),
)
def test_the_parser_returns_a_message_or_refuses_it(parts):
    raw = b"".join(parts)
    try:
        parsed = mail.parse(raw)
    except mail.MalformedMail:
        return
    assert isinstance(parsed.subject, str)
    assert isinstance(parsed.text, str)
