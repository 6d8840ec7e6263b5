"""Answer a retried webhook delivery exactly as the first one, changing nothing."""

from __future__ import annotations

from flask import Response
from sqlalchemy.exc import IntegrityError

from contact_center.extensions import db
from contact_center.webhook_receipts import add_receipt, find_receipt


def replay(key: str) -> Response | None:
    """The stored answer to an earlier delivery with this key, if there was one."""
    receipt = find_receipt(key)
    if receipt is None:
        return None
    return Response(receipt.body, status=receipt.status_code, content_type=receipt.content_type)


def claim(key: str, body: str, content_type: str, status_code: int = 200) -> Response | None:
    """Stage this delivery's answer in the current transaction.

    Returns None when this delivery is the first; the caller's commit stores the answer
    together with the delivery's changes (flushed here with the answer). When a concurrent
    delivery of the same key won the race, rolls back and returns that delivery's answer;
    any other conflict is raised, after the rollback, since nothing was stored.
    """
    add_receipt(key, status_code, content_type, body)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        earlier = replay(key)
        if earlier is None:
            raise
        return earlier
    return None
