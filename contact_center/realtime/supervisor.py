"""The `/supervisor` namespace: supervisors' live boards.

Only supervisors and admins may connect (an API token in `auth`, or the login session). A
board gets `board` (everything, on connect), then `board_delta` (queues' figures and
agents' rows as they change) and `sla.escalation` events.
"""

from __future__ import annotations

from typing import Any

from flask import session
from flask_socketio import Namespace, emit, join_room

from contact_center.board import live
from contact_center.realtime.agent import socket_user
from contact_center.realtime.events import SUPERVISOR_NAMESPACE, SUPERVISORS_ROOM


class SupervisorNamespace(Namespace):
    def on_connect(self, auth: Any = None) -> bool:
        user = socket_user(auth)
        if user is None or not user.is_active or not user.has_role("supervisor"):
            return False  # refuses the connection
        session["supervisor_id"] = user.id
        join_room(SUPERVISORS_ROOM)
        # The whole board once; `board_delta` events keep it current from here.
        emit("board", live.snapshot())
        return True


def register(socketio) -> None:
    """Attach the namespace to the Socket.IO server (once, however many apps are built)."""
    if not any(h.namespace == SUPERVISOR_NAMESPACE for h in socketio.namespace_handlers):
        socketio.on_namespace(SupervisorNamespace(SUPERVISOR_NAMESPACE))
