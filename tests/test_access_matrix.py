"""The access-control matrix: every route and socket event against a declared policy.

`ROUTES` names who may use each (method, rule) the app serves; a route the app serves
without an entry here fails the test, so a new route cannot ship without a decision. Each
entry is checked as anonymous, agent, supervisor and admin (the API with bearer tokens,
pages with a login session), on objects that do not exist: a refusal is 401/403 (pages
send the anonymous to the login form), anything else is an admission (404, 422...).
"""

from __future__ import annotations

import pytest

from contact_center.agents.services import issue_token, revoke_token, token_record
from contact_center.extensions import socketio
from contact_center.realtime.agent import AgentNamespace
from contact_center.realtime.supervisor import SupervisorNamespace

ROLES = ("anonymous", "agent", "supervisor", "admin")
RANK = {role: index for index, role in enumerate(ROLES)}
# public: anyone; webhook: only a provider's signature or secret (unsigned: 403 for all);
# signed_in: any signed-in user; agent / supervisor / admin: that role or above.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/"): "signed_in",  # the anonymous are sent to the login form
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "signed_in",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/static/<path:filename>"): "public",
    ("GET", "/api/v1/openapi.json"): "public",
    ("POST", "/api/v1/auth/tokens"): "public",
    # The customers' own pages: a token in the link is the key.
    ("GET", "/support"): "public",
    ("POST", "/support"): "public",
    ("GET", "/support/status/<token>"): "public",
    ("POST", "/support/status/<token>"): "public",
    ("GET", "/survey/<token>"): "public",
    ("POST", "/survey/<token>"): "public",
    ("GET", "/agent"): "agent",
    ("GET", "/supervisor"): "supervisor",
    ("GET", "/supervisor/reports"): "supervisor",
    ("GET", "/admin/users"): "supervisor",
    ("GET", "/admin/queues"): "supervisor",
    ("GET", "/admin/calendars"): "supervisor",
    ("GET", "/admin/sla-policies"): "supervisor",
    ("GET", "/admin/ivr-flows"): "supervisor",
    ("DELETE", "/api/v1/auth/tokens/current"): "agent",
    ("GET", "/api/v1/agents"): "agent",
    ("GET", "/api/v1/agents/me/endpoint"): "agent",
    ("PATCH", "/api/v1/agents/me/endpoint"): "agent",
    ("POST", "/api/v1/agents/me/voice-token"): "agent",
    ("GET", "/api/v1/agents/<int:agent_id>/endpoint"): "supervisor",
    ("PATCH", "/api/v1/agents/<int:agent_id>/endpoint"): "supervisor",
    ("POST", "/api/v1/agents/<int:agent_id>/sign-out"): "supervisor",
    ("POST", "/api/v1/agents/<int:agent_id>/status"): "supervisor",
    ("GET", "/api/v1/board/sla"): "supervisor",
    ("GET", "/api/v1/board/staffing/what-if"): "supervisor",
    ("GET", "/api/v1/calendars"): "agent",
    ("POST", "/api/v1/calendars"): "admin",
    ("GET", "/api/v1/calendars/<int:calendar_id>"): "agent",
    ("PUT", "/api/v1/calendars/<int:calendar_id>"): "admin",
    ("POST", "/api/v1/calendars/<int:calendar_id>/add-minutes"): "agent",
    ("GET", "/api/v1/canned-responses"): "agent",
    ("POST", "/api/v1/canned-responses"): "supervisor",
    ("DELETE", "/api/v1/canned-responses/<int:canned_id>"): "supervisor",
    ("GET", "/api/v1/complaints"): "agent",
    ("POST", "/api/v1/complaints"): "agent",
    ("GET", "/api/v1/complaints/<int:complaint_id>"): "agent",
    ("PATCH", "/api/v1/complaints/<int:complaint_id>"): "agent",
    ("POST", "/api/v1/complaints/<int:complaint_id>/close"): "agent",
    ("GET", "/api/v1/complaints/<int:complaint_id>/final-response"): "agent",
    ("POST", "/api/v1/complaints/<int:complaint_id>/final-response"): "agent",
    ("POST", "/api/v1/complaints/<int:complaint_id>/follow-up"): "agent",
    ("GET", "/api/v1/complaints/settings"): "supervisor",
    ("PUT", "/api/v1/complaints/settings"): "admin",
    ("GET", "/api/v1/customers"): "agent",
    ("POST", "/api/v1/customers"): "agent",
    ("GET", "/api/v1/customers/<int:customer_id>"): "agent",
    ("PATCH", "/api/v1/customers/<int:customer_id>"): "agent",
    ("POST", "/api/v1/customers/<int:customer_id>/call"): "agent",
    ("POST", "/api/v1/customers/<int:customer_id>/erase"): "admin",
    ("GET", "/api/v1/customers/<int:customer_id>/export"): "supervisor",
    ("GET", "/api/v1/customers/<int:customer_id>/history"): "agent",
    ("POST", "/api/v1/customers/<int:customer_id>/notes"): "agent",
    ("POST", "/api/v1/customers/import"): "supervisor",
    ("POST", "/api/v1/customers/tiers"): "admin",
    ("GET", "/api/v1/interactions/<int:interaction_id>"): "agent",
    ("PATCH", "/api/v1/interactions/<int:interaction_id>"): "agent",
    ("POST", "/api/v1/interactions/<int:interaction_id>/consult"): "agent",
    ("POST", "/api/v1/interactions/<int:interaction_id>/consult/cancel"): "agent",
    ("POST", "/api/v1/interactions/<int:interaction_id>/consult/complete"): "agent",
    ("POST", "/api/v1/interactions/<int:interaction_id>/hold"): "agent",
    ("POST", "/api/v1/interactions/<int:interaction_id>/monitor"): "supervisor",
    ("POST", "/api/v1/interactions/<int:interaction_id>/recording"): "agent",
    ("POST", "/api/v1/interactions/<int:interaction_id>/transfer"): "agent",
    ("GET", "/api/v1/ivr/emergency"): "supervisor",
    ("PUT", "/api/v1/ivr/emergency"): "admin",
    ("GET", "/api/v1/ivr/flows"): "supervisor",
    ("POST", "/api/v1/ivr/flows"): "admin",
    ("GET", "/api/v1/ivr/flows/<int:flow_id>"): "supervisor",
    ("POST", "/api/v1/ivr/flows/<int:flow_id>/activate"): "admin",
    ("GET", "/api/v1/queues"): "agent",
    ("POST", "/api/v1/queues"): "supervisor",
    ("PATCH", "/api/v1/queues/<int:queue_id>"): "supervisor",
    ("GET", "/api/v1/queues/<int:queue_id>/estimate"): "agent",
    ("GET", "/api/v1/reports/<any(interval, daily, agents, sla, complaints):kind>"): "supervisor",
    ("GET", "/api/v1/routing/events"): "supervisor",
    ("GET", "/api/v1/sla/policies"): "agent",
    ("POST", "/api/v1/sla/policies"): "admin",
    ("GET", "/api/v1/sla/policies/<int:policy_id>"): "agent",
    ("PUT", "/api/v1/sla/policies/<int:policy_id>"): "admin",
    ("DELETE", "/api/v1/sla/policies/<int:policy_id>"): "admin",
    ("GET", "/api/v1/sla/report"): "supervisor",
    ("GET", "/api/v1/sla/tickets/<int:ticket_id>"): "agent",
    ("POST", "/api/v1/surveys/servqual"): "agent",
    ("GET", "/api/v1/surveys/servqual/report"): "supervisor",
    ("GET", "/api/v1/tickets"): "agent",
    ("POST", "/api/v1/tickets"): "agent",
    ("GET", "/api/v1/tickets/<int:ticket_id>"): "agent",
    ("PATCH", "/api/v1/tickets/<int:ticket_id>"): "agent",
    ("GET", "/api/v1/tickets/<int:ticket_id>/attachments/<int:attachment_id>"): "agent",
    ("GET", "/api/v1/tickets/<int:ticket_id>/audit"): "agent",
    ("POST", "/api/v1/tickets/<int:ticket_id>/calls"): "agent",
    ("GET", "/api/v1/tickets/<int:ticket_id>/canned/<int:canned_id>"): "agent",
    ("POST", "/api/v1/tickets/<int:ticket_id>/links"): "agent",
    ("POST", "/api/v1/tickets/<int:ticket_id>/merge"): "agent",
    ("POST", "/api/v1/tickets/<int:ticket_id>/notes"): "agent",
    ("POST", "/api/v1/tickets/<int:ticket_id>/replies"): "agent",
    ("GET", "/api/v1/tickets/settings"): "supervisor",
    ("PUT", "/api/v1/tickets/settings"): "admin",
    ("GET", "/api/v1/users"): "supervisor",
    ("POST", "/api/v1/users"): "admin",
    ("GET", "/api/v1/users/<int:user_id>"): "supervisor",
    ("PATCH", "/api/v1/users/<int:user_id>"): "supervisor",
    ("POST", "/api/v1/users/<int:user_id>/deactivate"): "admin",
    ("POST", "/api/v1/users/<int:user_id>/password"): "admin",
    ("POST", "/api/v1/users/<int:user_id>/reactivate"): "admin",
    ("POST", "/webhooks/email/inbound"): "webhook",
    ("POST", "/webhooks/email/inbound/mime"): "webhook",
    ("POST", "/webhooks/twilio/voice"): "webhook",
    ("POST", "/webhooks/twilio/voice/client"): "webhook",
    ("POST", "/webhooks/twilio/voice/connect/<reservation_id>"): "webhook",
    ("POST", "/webhooks/twilio/voice/enqueue-result"): "webhook",
    ("POST", "/webhooks/twilio/voice/fallback"): "webhook",
    ("POST", "/webhooks/twilio/voice/gather/<int:flow_version>/<node>"): "webhook",
    ("POST", "/webhooks/twilio/voice/outbound/<int:interaction_id>"): "webhook",
    ("POST", "/webhooks/twilio/voice/recording"): "webhook",
    ("POST", "/webhooks/twilio/voice/requeue/<int:interaction_id>"): "webhook",
    ("POST", "/webhooks/twilio/voice/status"): "webhook",
    ("POST", "/webhooks/twilio/voice/survey/<int:interaction_id>"): "webhook",
    ("POST", "/webhooks/twilio/voice/transcription"): "webhook",
    ("POST", "/webhooks/twilio/voice/wait"): "webhook",
    ("POST", "/webhooks/twilio/voice/wait-option"): "webhook",
}
# Socket.IO: who may connect to each namespace, and the client events each handles.
SOCKETS: dict[str, tuple[str, set[str]]] = {
    "/agent": (
        "agent",
        {
            "set_status",
            "accept",
            "reject",
            "complete",
            "wrapup_done",
            "view_ticket",
            "leave_ticket",
        },
    ),
    "/supervisor": ("supervisor", set()),
}
# Agent routes and events that read a queue's records (its interactions, tickets and
# complaints, or the queue itself): an agent outside a restricted queue's teams gets 404 for
# its records, finds them left out of lists, and 422 naming one in a body, unless they hold
# it (agents.services.can_read). tests/routing/test_restricted_queues.py asks each of them.
QUEUE_SCOPED: set[tuple[str, str]] = {
    ("GET", "/api/v1/queues"),
    ("GET", "/api/v1/queues/<int:queue_id>/estimate"),
    ("GET", "/api/v1/interactions/<int:interaction_id>"),
    ("GET", "/api/v1/tickets"),
    ("GET", "/api/v1/tickets/<int:ticket_id>"),
    ("PATCH", "/api/v1/tickets/<int:ticket_id>"),
    ("GET", "/api/v1/tickets/<int:ticket_id>/attachments/<int:attachment_id>"),
    ("GET", "/api/v1/tickets/<int:ticket_id>/audit"),
    ("POST", "/api/v1/tickets/<int:ticket_id>/calls"),
    ("GET", "/api/v1/tickets/<int:ticket_id>/canned/<int:canned_id>"),
    ("POST", "/api/v1/tickets/<int:ticket_id>/links"),
    ("POST", "/api/v1/tickets/<int:ticket_id>/merge"),
    ("POST", "/api/v1/tickets/<int:ticket_id>/notes"),
    ("POST", "/api/v1/tickets/<int:ticket_id>/replies"),
    ("GET", "/api/v1/sla/tickets/<int:ticket_id>"),
    ("GET", "/api/v1/complaints"),
    ("POST", "/api/v1/complaints"),
    ("GET", "/api/v1/complaints/<int:complaint_id>"),
    ("PATCH", "/api/v1/complaints/<int:complaint_id>"),
    ("POST", "/api/v1/complaints/<int:complaint_id>/close"),
    ("GET", "/api/v1/complaints/<int:complaint_id>/final-response"),
    ("POST", "/api/v1/complaints/<int:complaint_id>/final-response"),
    ("POST", "/api/v1/complaints/<int:complaint_id>/follow-up"),
    ("GET", "/api/v1/customers"),
    ("GET", "/api/v1/customers/<int:customer_id>/history"),
    ("POST", "/api/v1/surveys/servqual"),
}
# The /agent events that do: view_ticket (and so ticket_activity); offer, current and
# consult carry the screen pop as the agent may read it.
QUEUE_SCOPED_EVENTS = {"view_ticket"}
PLACEHOLDERS = {
    "path:filename": "css/app.css",
    "token": "no-such-token",
    "reservation_id": "00000000-0000-0000-0000-000000000000",
    "node": "menu",
    "any(interval, daily, agents, sla, complaints):kind": "daily",
}


def served_routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def concrete(rule: str) -> str:
    """The rule with every variable filled: ids of nothing that exists."""
    path = rule
    while "<" in path:
        start, end = path.index("<"), path.index(">")
        variable = path[start + 1 : end]
        value = PLACEHOLDERS.get(variable, "999999" if variable.startswith("int:") else "x")
        path = path[:start] + value + path[end + 1 :]
    return path


def test_every_route_has_a_declared_policy(app):
    served = served_routes(app)
    assert served - ROUTES.keys() == set(), "routes without a policy entry"
    assert ROUTES.keys() - served == set(), "policy entries for routes that are gone"


def test_every_socket_event_has_a_declared_policy():
    for namespace, handler in (("/agent", AgentNamespace), ("/supervisor", SupervisorNamespace)):
        handled = {
            name[3:]
            for name in dir(handler)
            if name.startswith("on_") and callable(getattr(handler, name))
        } - {"connect", "disconnect"}
        assert handled == SOCKETS[namespace][1], namespace


def test_queue_scoped_routes_are_agent_routes():
    assert {ROUTES.get(route) for route in QUEUE_SCOPED} == {"agent"}
    assert QUEUE_SCOPED_EVENTS <= SOCKETS["/agent"][1]


@pytest.fixture
def people(create_user):
    return {role: create_user(f"the-{role}", role) for role in ROLES[1:]}


def _request(app, role: str, method: str, path: str, people):
    client = app.test_client()  # a browser of its own: nothing carries over
    headers = {}
    with client.session_transaction() as session:
        if role != "anonymous" and not path.startswith("/api/"):
            user = people[role]
            session["_user_id"] = str(user.id)
            session["_fresh"] = True
            session["epoch"] = user.session_epoch
    if role != "anonymous" and path.startswith("/api/"):
        # A new token each time: one route revokes the token it is called with.
        headers["Authorization"] = f"Bearer {issue_token(people[role])[0]}"
    body = {"json": {} if method != "GET" else None}
    if path.startswith("/webhooks/"):  # as providers post: a form, here without a signature
        body = {"data": {"CallSid": "CA1"}}
    # Its own app context too: the test's is shared by the requests otherwise, and with it
    # `g`, where Flask-Login keeps the user it loaded.
    with app.app_context():
        return client.open(path, method=method, headers=headers, **body)


def refused(response, role: str, path: str, policy: str) -> bool:
    if response.status_code in (401, 403):
        return True
    if role != "anonymous" or policy == "public":
        return False
    # Pages send the anonymous to sign in; a form post without its CSRF token is refused.
    to_login = response.status_code == 302 and "/login" in response.headers.get("Location", "")
    return to_login or (response.status_code == 400 and not path.startswith("/api/"))


def test_each_role_gets_exactly_what_the_policy_allows(app, client, people):
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"  # this test signs in a lot
    wrong = []
    for (method, rule), policy in sorted(ROUTES.items()):
        path = concrete(rule)
        for role in ROLES:
            response = _request(app, role, method, path, people)
            if policy == "webhook":
                expected_refusal = True  # unsigned, whoever asks
            elif policy == "public":
                expected_refusal = False
            elif policy == "signed_in":
                expected_refusal = role == "anonymous"
            else:
                expected_refusal = RANK[role] < RANK[policy]
            if refused(response, role, path, policy) != expected_refusal:
                wrong.append((method, rule, role, response.status_code))
            if policy == "webhook":
                assert response.status_code == 403, (method, rule, role, response.status_code)
    assert wrong == [], "\n".join(map(str, wrong))


@pytest.mark.parametrize("namespace", sorted(SOCKETS))
def test_each_role_may_open_only_its_sockets(app, client, people, namespace):
    minimum, _events = SOCKETS[namespace]
    anonymous = socketio.test_client(app, namespace=namespace, flask_test_client=client)
    assert not anonymous.is_connected(namespace)
    for role, user in people.items():
        token, _ = issue_token(user)
        socket = socketio.test_client(
            app, namespace=namespace, auth={"token": token}, flask_test_client=client
        )
        assert socket.is_connected(namespace) == (RANK[role] >= RANK[minimum]), (namespace, role)
        if socket.is_connected(namespace):
            socket.disconnect(namespace)


def test_a_revoked_token_is_refused_at_once_by_the_api_and_the_sockets(app, client, people):
    token, _ = issue_token(people["agent"])
    headers = {"Authorization": f"Bearer {token}"}
    socket = socketio.test_client(
        app, namespace="/agent", auth={"token": token}, flask_test_client=client
    )
    assert socket.is_connected("/agent")
    for event in sorted(SOCKETS["/agent"][1]):
        ack = socket.emit(event, {}, namespace="/agent", callback=True)
        assert ack["ok"] is False and ack["error"]["code"] != "unauthorized", event
    assert client.get("/api/v1/customers", headers=headers).status_code == 200

    revoke_token(token_record(token))

    assert client.get("/api/v1/customers", headers=headers).status_code == 401
    ack = socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    assert ack == {"ok": False, "error": {"code": "unauthorized", "message": "Sign in again."}}
    again = socketio.test_client(
        app, namespace="/agent", auth={"token": token}, flask_test_client=client
    )
    assert not again.is_connected("/agent")
