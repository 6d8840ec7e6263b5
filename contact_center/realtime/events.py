"""Server-to-client events, emitted by services (through the message queue when scaled out)."""

from __future__ import annotations

from typing import Any

from contact_center.extensions import socketio

AGENT_NAMESPACE = "/agent"
SUPERVISOR_NAMESPACE = "/supervisor"
SUPERVISORS_ROOM = "supervisors"


def agent_room(agent_id: int) -> str:
    """The room every socket of one agent joins."""
    return f"agent:{agent_id}"


def emit_to_agent(agent_id: int, event: str, payload: dict[str, Any]) -> None:
    """Send an event to all of an agent's open consoles."""
    socketio.emit(event, payload, namespace=AGENT_NAMESPACE, to=agent_room(agent_id))


def emit_to_supervisors(event: str, payload: dict[str, Any]) -> None:
    """Send an event to every supervisor's open board."""
    socketio.emit(event, payload, namespace=SUPERVISOR_NAMESPACE, to=SUPERVISORS_ROOM)
