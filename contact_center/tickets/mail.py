"""Reading mail: parse RFC 5322 bytes into what ticketing needs (no database here).

The standard library parses (`email`, `policy.default`): any charset it knows, multipart
alternatives, attachments. HTML-only mail is reduced to text; quoted history and
signatures are cut from the reply text with mail-parser-reply, and the original is kept.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from bs4 import BeautifulSoup
from mailparser_reply import EmailReplyParser

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_SUBJECT = 998
SUBJECT_TOKEN = re.compile(r"\[#(\d{4,12})\]")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")


class MalformedMail(ValueError):
    """Bytes that are not a mail we can take (no sender, not RFC 5322)."""


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class ParsedMail:
    message_id: str
    sender: str  # the bare address, lower-cased
    sender_name: str
    recipients: list[str]
    subject: str
    text: str  # the whole text body (HTML reduced to text)
    reply_text: str  # without quoted history and signature
    in_reply_to: list[str]
    references: list[str]
    automatic: bool  # RFC 3834: never auto-answer it
    attachments: list[Attachment] = field(default_factory=list)
    oversize: list[tuple[str, int]] = field(default_factory=list)  # (filename, size) not kept
    report: EmailMessage | None = None  # a delivery status notification (a bounce)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: scripts, styles and markup gone."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "title"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    text = soup.get_text("\n")
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def strip_quotes(text: str) -> str:
    """The new part of a reply: quoted history and the signature removed."""
    try:
        replies = EmailReplyParser(languages=["en", "de", "fr", "es", "nl"]).read(text).replies
    except Exception:  # a third-party heuristic must never lose the message
        return text.strip()
    reply = replies[0].body.strip() if replies else ""
    return reply or text.strip()


def _message_ids(value: str | None) -> list[str]:
    return [mid for mid in MESSAGE_ID.findall(value or "") if len(mid) <= 998]


def one_line(text: str) -> str:
    """Header-safe text: line breaks (which would end a header) become spaces."""
    return " ".join(text.split())


def is_automatic(message: EmailMessage) -> bool:
    """RFC 3834 and common practice: mail no robot should answer."""
    auto_submitted = (message.get("Auto-Submitted") or "no").strip().lower()
    precedence = (message.get("Precedence") or "").strip().lower()
    return (
        auto_submitted != "no"
        or precedence in ("bulk", "list", "junk")
        or any(key.lower().startswith("list-") for key in message.keys())
        or message.get("X-Auto-Response-Suppress") is not None
        or (message.get("Return-Path") is not None and message["Return-Path"].strip() in ("<>", ""))
        or message.get_content_type() == "multipart/report"
    )


def _text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError):  # an unknown or lying charset
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if part.get_content_type() == "text/html":
        return html_to_text(content)
    return content.replace("\r\n", "\n").strip()


def _attachments(message: EmailMessage, parsed: ParsedMail) -> None:
    if message.get_content_type() == "multipart/report":
        return  # the returned message is evidence, not an attachment
    for part in message.iter_attachments():
        data = part.get_payload(decode=True)
        if data is None:  # an attached message/rfc822
            data = part.as_bytes()
        filename = (part.get_filename() or "attachment")[:255]
        if len(data) > MAX_ATTACHMENT_BYTES:
            parsed.oversize.append((filename, len(data)))
            continue
        parsed.attachments.append(Attachment(filename, part.get_content_type()[:255], data))


def parse(raw: bytes) -> ParsedMail:
    """Parse a raw message; raises MalformedMail for what is not a mail."""
    if not raw or not raw.strip():
        raise MalformedMail("The message is empty.")
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        from_header = str(message.get("From") or "")
    except (TypeError, ValueError, IndexError) as exc:
        raise MalformedMail(f"Not an RFC 5322 message: {exc}") from None
    name, address = parseaddr(from_header)
    if "@" not in address:
        raise MalformedMail("The message has no sender address (From).")
    if len(address) > 320:
        raise MalformedMail("The sender address is longer than 320 characters.")
    message_ids = _message_ids(str(message.get("Message-ID") or ""))
    # A message without a Message-ID is known by its bytes, so a redelivery is still a repeat.
    message_id = message_ids[0] if message_ids else f"<{hashlib.sha256(raw).hexdigest()}@hash>"
    text = _text_body(message)
    recipients = [
        addr.lower()
        for _, addr in getaddresses(
            [str(message.get(h) or "") for h in ("To", "Cc", "Delivered-To", "X-Original-To")]
        )
        if "@" in addr
    ]
    parsed = ParsedMail(
        message_id=message_id[:998],
        sender=address.strip().lower(),
        sender_name=one_line(name)[:200],
        recipients=recipients,
        subject=one_line(str(message.get("Subject") or ""))[:MAX_SUBJECT],
        text=text,
        reply_text=strip_quotes(text),
        in_reply_to=_message_ids(str(message.get("In-Reply-To") or "")),
        references=_message_ids(str(message.get("References") or "")),
        automatic=is_automatic(message),
    )
    if message.get_content_type() == "multipart/report":
        parsed.report = message
    _attachments(message, parsed)
    return parsed


@dataclass
class DeliveryFailure:
    recipient: str
    permanent: bool
    status: str
    diagnostic: str
    original_message_id: str | None


def delivery_failures(report: EmailMessage) -> list[DeliveryFailure]:
    """The failed recipients of a delivery status notification (RFC 3464)."""
    original_id = None
    failures: list[tuple[str, str, str, str]] = []
    for part in report.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "text/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            headers = inner if isinstance(inner, EmailMessage) else None
            if headers is None:
                text = part.get_payload(decode=True) or str(payload).encode()
                headers = BytesParser(policy=policy.default).parsebytes(text, headersonly=True)
            ids = _message_ids(str(headers.get("Message-ID") or ""))
            original_id = ids[0] if ids else original_id
        elif kind == "message/delivery-status":
            # Each part after the first (per-message) block describes one recipient.
            for block in part.get_payload()[1:] if isinstance(part.get_payload(), list) else []:
                action = str(block.get("Action") or "").strip().lower()
                if action not in ("failed", "delayed"):
                    continue
                recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient"))
                recipient = recipient.split(";", 1)[-1].strip().lower()
                status = str(block.get("Status") or "").strip()
                diagnostic = str(block.get("Diagnostic-Code") or "").strip()
                failures.append((recipient, action, status, diagnostic))
    return [
        DeliveryFailure(
            recipient=recipient,
            permanent=action == "failed" and status.startswith("5"),
            status=status,
            diagnostic=diagnostic[:500],
            original_message_id=original_id,
        )
        for recipient, action, status, diagnostic in failures
    ]


def subject_ticket_number(subject: str) -> str | None:
    """The ticket number in a subject token such as "Re: Lost card [#10042]"."""
    match = SUBJECT_TOKEN.search(subject)
    return match.group(1) if match else None
