"""Recordings deleted at Twilio: erasure and retention ask, an RQ job deletes, retried until done.

We hold only a recording's URL; the audio lives at Twilio until it is deleted there. Asking
for a deletion records a row (one per RecordingSid) in the caller's transaction, so the
erasure or retention that asks never waits for Twilio or fails with it. After the commit a
job calls Twilio's `DELETE .../Recordings/{RecordingSid}.json`; a 404 means already gone.
A failure (Twilio down, bad credentials) is retried with back-off through the routing timer
set, forever at the longest interval, and stays visible as `pending` with the attempts and
the last error; a deleted recording is never asked for again. A routing rebuild re-arms
the pending ones (their jobs and timers were in the Redis that was lost).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column
from twilio.base.exceptions import TwilioRestException

from contact_center import jobs
from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db

log = logging.getLogger(__name__)
STATUSES = ("pending", "deleted")
RETRY_BACKOFF_S = (30, 120, 600, 1800, 3600)
TIMER_PREFIX = "recording"
# .../Recordings/RE0123...(.mp3|.json)?: the RecordingSid at the end of a recording's URL.
RECORDING_SID = re.compile(r"/Recordings/(RE[0-9A-Za-z]+)(?:\.\w+)?/?$")


class RecordingDeletion(db.Model):
    """A recording to delete at Twilio (pending) or deleted there (deleted)."""

    __tablename__ = "recording_deletions"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Whose it was (the export shows it) and why it goes: "erasure" or "retention".
    customer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    reason: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    # What Twilio (or the client) said last time; never personal data (SIDs and codes).
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def recording_sid(url: str | None) -> str | None:
    """The RecordingSid a recording URL names (None if it names none)."""
    match = RECORDING_SID.search(url or "")
    return match.group(1) if match else None


def request_deletions(
    urls: Iterable[str | None], *, reason: str, customer_id: int | None = None
) -> list[int]:
    """Stage a deletion for each recording URL not already asked for; their ids (flushed).

    URLs naming no RecordingSid are logged and skipped: there is nothing to ask Twilio.
    """
    sids: dict[str, None] = {}
    for url in urls:
        if not url:
            continue
        sid = recording_sid(url)
        if sid is None:
            log.warning("recording URL without a RecordingSid not deleted at Twilio")
            continue
        sids[sid] = None
    if not sids:
        return []
    known = set(
        db.session.scalars(
            sa.select(RecordingDeletion.recording_sid).where(
                RecordingDeletion.recording_sid.in_(list(sids))
            )
        )
    )
    rows = [
        RecordingDeletion(recording_sid=sid, customer_id=customer_id, reason=reason)
        for sid in sids
        if sid not in known
    ]
    db.session.add_all(rows)
    db.session.flush()
    return [row.id for row in rows]


def queue_deletions(ids: Iterable[int]) -> None:
    """Hand committed deletions to the workers; if Redis is down, a routing rebuild does."""
    for deletion_id in ids:
        _queue(deletion_id, 0)


def _queue(deletion_id: int, attempts: int) -> None:
    try:
        jobs.enqueue(
            delete_recording, deletion_id, job_id=f"recording-delete-{deletion_id}-{attempts}"
        )
    except redis.RedisError:
        log.exception("recording deletion %s waits for `flask routing rebuild`", deletion_id)


def twilio_delete(sid: str) -> None:
    """DELETE the recording at Twilio; a 404 (already gone) counts as done."""
    from contact_center.ivr.calls import get_twilio_client

    try:
        get_twilio_client().recordings(sid).delete()
    except TwilioRestException as exc:
        if exc.status != 404:
            raise


def delete_recording(deletion_id: int) -> str:
    """RQ job: delete one recording at Twilio; on failure retry with back-off."""
    deletion = db.session.scalar(
        sa.select(RecordingDeletion).where(RecordingDeletion.id == deletion_id).with_for_update()
    )
    if deletion is None or deletion.status != "pending":
        db.session.rollback()
        return "nothing to delete"
    deletion.attempts += 1
    try:
        twilio_delete(deletion.recording_sid)
    except Exception as exc:  # whatever failed, the deletion must stay armed for a retry
        return _failed(deletion, exc)
    deletion.status = "deleted"
    deletion.deleted_at = utcnow()
    deletion.last_error = None
    db.session.commit()
    log.info("recording %s deleted at Twilio", deletion.recording_sid)
    return "deleted"


def _failed(deletion: RecordingDeletion, exc: Exception) -> str:
    status = getattr(exc, "status", None)
    deletion.last_error = (f"HTTP {status}: " if status else "") + type(exc).__name__
    db.session.commit()
    delay = RETRY_BACKOFF_S[min(deletion.attempts, len(RETRY_BACKOFF_S)) - 1]
    from contact_center.routing.services import get_store

    get_store().add_timer(f"{TIMER_PREFIX}:{deletion.id}", utcnow().timestamp() + delay)
    log.warning(
        "recording %s not deleted (%s); retried in %s s",
        deletion.recording_sid,
        deletion.last_error,
        delay,
    )
    return "retrying"


def retry_deletion(deletion_id: int) -> None:
    """Timer: a retry is due (or a rebuild found it pending): queue the job again."""
    deletion = db.session.get(RecordingDeletion, deletion_id)
    if deletion is not None and deletion.status == "pending":
        _queue(deletion.id, deletion.attempts)


def pending_ids() -> list[int]:
    """Deletions not done yet: a Redis rebuild queues them again."""
    return list(
        db.session.scalars(
            sa.select(RecordingDeletion.id).where(RecordingDeletion.status == "pending")
        )
    )


def summary() -> dict[str, int | str | None]:
    """How many deletions are pending and done, and the oldest pending one's state."""
    counts = dict(
        db.session.execute(
            sa.select(RecordingDeletion.status, sa.func.count()).group_by(RecordingDeletion.status)
        ).all()
    )
    oldest = db.session.scalar(
        sa.select(RecordingDeletion)
        .where(RecordingDeletion.status == "pending")
        .order_by(RecordingDeletion.requested_at, RecordingDeletion.id)
        .limit(1)
    )
    return {
        "pending": counts.get("pending", 0),
        "deleted": counts.get("deleted", 0),
        "oldest_pending_sid": oldest.recording_sid if oldest else None,
        "oldest_pending_attempts": oldest.attempts if oldest else 0,
        "oldest_pending_error": oldest.last_error if oldest else None,
    }


def for_customer(customer_id: int) -> list[RecordingDeletion]:
    """A customer's recording deletions, oldest first (the export shows them)."""
    return list(
        db.session.scalars(
            sa.select(RecordingDeletion)
            .where(RecordingDeletion.customer_id == customer_id)
            .order_by(RecordingDeletion.id)
        )
    )
