"""SERVQUAL: expectation and perception on the five service-quality dimensions, and the gap
Q = P - E per queue and period (Parasuraman, Zeithaml and Berry; a 1-7 scale each)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue

DIMENSIONS = ("tangibles", "reliability", "responsiveness", "assurance", "empathy")


class ServqualResponse(db.Model):
    __tablename__ = "servqual_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("interactions.id", ondelete="SET NULL"), index=True
    )
    queue_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("queues.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # {dimension: 1-7} for what the customer expected and what they perceived.
    expectations: Mapped[dict] = mapped_column(sa.JSON)
    perceptions: Mapped[dict] = mapped_column(sa.JSON)


def record(
    interaction: Interaction, expectations: dict[str, int], perceptions: dict[str, int]
) -> ServqualResponse:
    """Store one customer's answers about one interaction (its queue is kept for reports)."""
    response = ServqualResponse(
        interaction_id=interaction.id,
        queue_id=interaction.queue_id,
        expectations=expectations,
        perceptions=perceptions,
    )
    db.session.add(response)
    db.session.commit()
    return response


def gap_report(start: datetime | None = None, end: datetime | None = None) -> list[dict[str, Any]]:
    """Per queue: responses, and per dimension the mean expectation, perception and gap."""
    query = sa.select(ServqualResponse)
    if start is not None:
        query = query.where(ServqualResponse.created_at >= start)
    if end is not None:
        query = query.where(ServqualResponse.created_at < end)
    by_queue: dict[int | None, list[ServqualResponse]] = {}
    for response in db.session.scalars(query):
        by_queue.setdefault(response.queue_id, []).append(response)
    names = dict(db.session.execute(sa.select(Queue.id, Queue.name)).all())
    report = []
    for queue_id, responses in sorted(by_queue.items(), key=lambda item: names.get(item[0]) or ""):
        dimensions = {}
        for dimension in DIMENSIONS:
            e = sum(r.expectations[dimension] for r in responses) / len(responses)
            p = sum(r.perceptions[dimension] for r in responses) / len(responses)
            dimensions[dimension] = {
                "expectation": round(e, 2),
                "perception": round(p, 2),
                "gap": round(p - e, 2),
            }
        overall = sum(d["gap"] for d in dimensions.values()) / len(DIMENSIONS)
        report.append(
            {
                "queue_id": queue_id,
                "queue": names.get(queue_id),
                "responses": len(responses),
                "dimensions": dimensions,
                "gap": round(overall, 2),
            }
        )
    return report
