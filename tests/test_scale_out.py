"""Scale-out as deployed: two gunicorn web processes and a `flask worker` on real PostgreSQL and
Redis. A call that arrives on one web process reaches an agent whose websocket is on the
other, through the Socket.IO message queue on Redis; the accept and the completion made on
that other process drive Twilio's REST API (the local stub)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from contact_center.agents.services import issue_token
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from contact_center.routing.store import PRESENCE, PROCESSES, SOCKETS
from tests.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    VOICE,
    call_sid,
    sign,
)
from tests.invariants import assert_invariants

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CALLER = "+447700900123"
WAIT_S = 60.0  # generous: two gunicorns, a worker and this test share two busy cores


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Run from the repository root in a session of its own (gunicorn's workers stop with it)."""
    with log.open("wb") as output:  # a file, not a pipe nobody reads: a full pipe blocks it
        return subprocess.Popen(  # noqa: S603  (our own commands)
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    """Terminate gracefully; kill the process group if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=20)


def tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-40:])


def wait_until_serving(process: subprocess.Popen, port: int, log: Path) -> None:
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        assert process.poll() is None, f"exited with {process.returncode}:\n{tail(log)}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"port {port} never answered:\n{tail(log)}")


def post_twilio(port: int, path: str, params: dict[str, str], query: dict[str, str] | None = None):
    """POST a form to a web process as Twilio does: signed over PUBLIC_BASE_URL."""
    full_path = path + (f"?{urlencode(query)}" if query else "")
    request = urllib.request.Request(  # noqa: S310  (a local URL)
        f"http://127.0.0.1:{port}{full_path}",
        data=urlencode(params).encode(),
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + full_path, params)},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WAIT_S) as response:  # noqa: S310
        return response.status, response.read()


def deployment_env(twilio_stub, **extra: str) -> dict[str, str]:
    """The environment of a deployment's processes on the test's database and Redis."""
    env = {
        **os.environ,
        "DATABASE_URL": TEST_DATABASE_URL or "",
        "REDIS_URL": TEST_REDIS_URL or "",
        "SECRET_KEY": "test-secret-key",
        "SOCKETIO_ASYNC_MODE": "gevent",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": twilio_stub.base_url,
        **extra,
    }
    # As in production: the message queue and its channel follow from REDIS_URL, the same
    # for every process of the deployment.
    for name in ("SOCKETIO_MESSAGE_QUEUE", "SOCKETIO_CHANNEL", "FLASK_APP"):
        env.pop(name, None)
    return env


def start_deployment(
    processes: ExitStack, ports: dict[str, int], logs: dict[str, Path], twilio_stub, **extra: str
) -> dict[str, subprocess.Popen]:
    """Two gunicorn web processes (gevent) and a `flask worker`, as production runs them;
    returns the web processes by name, once both serve."""
    env = deployment_env(twilio_stub, **extra)
    web = {}
    for name, port in ports.items():
        command = [
            str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-k", "gevent", "-w", "1",
            "--worker-connections", "100",
            "--graceful-timeout", "10", "-b", f"127.0.0.1:{port}", "wsgi:app",
        ]  # fmt: skip
        web[name] = start(command, env, logs[name])
        processes.callback(stop, web[name])
    worker = start([str(BIN / "flask"), "--app", "wsgi", "worker"], env, logs["worker"])
    processes.callback(stop, worker)
    for name, port in ports.items():
        wait_until_serving(web[name], port, logs[name])
    return web


async def console(port: int, token: str):
    """An agent's console on the /agent namespace of the web process at `port`."""
    import socketio

    client = socketio.AsyncSimpleClient()
    await client.connect(
        f"http://127.0.0.1:{port}",
        namespace="/agent",
        transports=["websocket"],
        auth={"token": token},
    )
    return client


async def agent_session(port: int, token: str, on_ready, on_offer) -> dict:
    """An agent's console over a real websocket: available, then accept and complete the offer
    it gets. Blocking steps in between (webhooks, the stub) run in threads."""
    async with await console(port, token) as agent:
        ack = await agent.call("set_status", {"status": "available"}, timeout=WAIT_S)
        assert ack["ok"] and ack["status"] == "available", ack
        await asyncio.to_thread(on_ready)
        end = time.monotonic() + WAIT_S
        while True:  # the `status` event may come first
            name, *args = await agent.receive(timeout=max(end - time.monotonic(), 0.1))
            if name == "offer":
                offer = args[0]
                break
        accepted = await agent.call(
            "accept", {"reservation_id": offer["reservation_id"]}, timeout=WAIT_S
        )
        assert accepted["ok"], accepted
        await asyncio.to_thread(on_offer, offer)
        completed = await agent.call(
            "complete",
            {"interaction_id": offer["interaction"]["id"], "disposition": "resolved"},
            timeout=WAIT_S,
        )
        assert completed["ok"], completed
        return {"offer": offer, "accepted": accepted, "completed": completed}


@pytest.mark.real_services
def test_a_call_arriving_on_one_web_process_reaches_an_agent_on_another(
    app, create_user, twilio_stub, tmp_path
):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    alice = create_user("alice", display_name="Alice Archer")
    token, _ = issue_token(alice)
    alice_id = alice.id
    db.session.remove()  # the web processes write these rows from now on

    ports = {"a": free_port(), "b": free_port()}
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "worker")}
    sid = call_sid(1)

    with ExitStack() as processes:
        start_deployment(processes, ports, logs, twilio_stub)

        def call_arrives_on_a() -> None:
            params = {
                "CallSid": sid,
                "AccountSid": ACCOUNT_SID,
                "From": CALLER,
                "To": "+441632960000",
                "CallStatus": "ringing",
                "Direction": "inbound",
            }
            status, body = post_twilio(ports["a"], VOICE, params)
            assert status == 200 and b"<Enqueue" in body, body

        def twilio_connects_the_caller(offer: dict) -> None:
            reservation_id = offer["reservation_id"]
            redirects = twilio_stub.wait_for(
                lambda r: r.call_sid == sid and "Url" in r.form, timeout=WAIT_S
            )
            assert redirects, "the caller's call was never redirected"
            assert redirects[0].form["Url"] == (
                f"{PUBLIC_BASE_URL}{VOICE}/connect/{reservation_id}?leg=caller"
            )
            agent_legs = twilio_stub.wait_for(
                lambda r: r.method == "POST" and r.call_sid is None and "To" in r.form,
                timeout=WAIT_S,
            )
            assert agent_legs, "the agent's leg was never dialled"
            assert agent_legs[0].form["To"] == "client:alice"
            # Twilio follows the redirect: the caller's TwiML comes from process A.
            status, body = post_twilio(
                ports["a"], f"{VOICE}/connect/{reservation_id}", {"CallSid": sid}, {"leg": "caller"}
            )
            assert status == 200
            assert f"cc-interaction-{offer['interaction']['id']}".encode() in body

        try:
            seen = asyncio.run(
                agent_session(
                    ports["b"],
                    token,
                    call_arrives_on_a,
                    twilio_connects_the_caller,
                )
            )
        except BaseException:
            for name, log in logs.items():
                print(f"--- {name} ---\n{tail(log)}")
            raise

        hang_ups = twilio_stub.wait_for(
            lambda r: r.call_sid == sid and r.form.get("Status") == "completed", timeout=WAIT_S
        )
        assert hang_ups, "completing did not hang up the caller"

    offer = seen["offer"]
    assert offer["interaction"]["from"] == CALLER
    assert offer["interaction"]["channel"] == "voice"
    assert offer["interaction"]["queue"] == "General"
    assert seen["completed"]["interaction"]["status"] in {"ended", "wrapup"}

    interaction = db.session.get(Interaction, offer["interaction"]["id"])
    assert interaction.external_id == sid
    assert interaction.from_address == CALLER
    assert interaction.agent_id == alice_id
    assert interaction.outcome == "answered"
    assert interaction.disposition == "resolved"
    assert interaction.answered_at is not None and interaction.ended_at is not None
    reservation = db.session.get(Reservation, offer["reservation_id"])
    assert reservation.status == "accepted" and reservation.agent_id == alice_id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 1


@pytest.mark.real_services
@pytest.mark.timeout(240)
def test_an_agent_whose_web_process_dies_keeps_the_offer_on_another(
    app, create_user, twilio_stub, tmp_path
):
    """Fault: the web process holding an agent's websocket is killed while an offer rings.
    The console reconnects to the other process (as the balancer sends it there), finds the
    same offer there, and accepts it."""

    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    alice = create_user("alice", display_name="Alice Archer")
    token, _ = issue_token(alice)
    alice_id = alice.id
    db.session.remove()
    ports = {"a": free_port(), "b": free_port()}
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "worker")}
    sid = call_sid(2)
    params = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": CALLER,
        "To": "+441632960000",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }

    async def next_offer(client) -> dict:
        end = time.monotonic() + WAIT_S
        while True:
            name, *args = await client.receive(timeout=max(end - time.monotonic(), 0.1))
            if name == "offer":
                return args[0]

    async def scenario(web: dict[str, subprocess.Popen]) -> tuple[dict, dict, dict]:
        on_a = await console(ports["a"], token)
        ack = await on_a.call("set_status", {"status": "available"}, timeout=WAIT_S)
        assert ack["ok"], ack
        status, body = await asyncio.to_thread(post_twilio, ports["b"], VOICE, params)
        assert status == 200 and b"<Enqueue" in body
        first = await next_offer(on_a)
        os.killpg(web["a"].pid, signal.SIGKILL)  # no disconnect handler runs: it just dies
        web["a"].wait(timeout=30)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(on_a.disconnect(), 5)
        async with await console(ports["b"], token) as on_b:
            again = await next_offer(on_b)
            accepted = await on_b.call(
                "accept", {"reservation_id": again["reservation_id"]}, timeout=WAIT_S
            )
        return first, again, accepted

    with ExitStack() as processes:
        # Offers ring long enough to outlive the reconnect on a busy machine.
        web = start_deployment(processes, ports, logs, twilio_stub, OFFER_TIMEOUT_S="120")
        try:
            first, again, accepted = asyncio.run(scenario(web))
        except BaseException:
            for name, log in logs.items():
                print(f"--- {name} ---\n{tail(log)}")
            raise

    assert again["reservation_id"] == first["reservation_id"]
    assert accepted["ok"], accepted
    db.session.expire_all()
    reservation = db.session.get(Reservation, first["reservation_id"])
    assert reservation.status == "accepted" and reservation.agent_id == alice_id
    interaction = db.session.get(Interaction, first["interaction"]["id"])
    assert interaction.external_id == sid and interaction.agent_id == alice_id
    assert interaction.answered_at is not None
    assert_invariants(app)


@pytest.mark.real_services
@pytest.mark.timeout(240)
def test_consoles_of_a_dead_web_process_stop_counting(app, create_user, twilio_stub, tmp_path):
    """Fault: a web process dies with an agent's console open, and the console reconnects
    to the other one. Once the dead process falls silent the workers take its socket off
    the agent's count, so when the agent then closes the console routing sees them go."""

    alice = create_user("alice", display_name="Alice Archer")
    token, _ = issue_token(alice)
    agent = str(alice.id)
    db.session.remove()
    redis_client = app.extensions["redis"]
    ports = {"a": free_port(), "b": free_port()}
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "worker")}

    async def until(predicate, what: str) -> None:
        end = time.monotonic() + WAIT_S
        while not predicate():
            assert time.monotonic() < end, f"timed out waiting until {what}"
            await asyncio.sleep(0.2)

    def sockets() -> int:
        return int(redis_client.hget(SOCKETS, agent) or 0)

    async def scenario(web: dict[str, subprocess.Popen]) -> None:
        await until(lambda: redis_client.zcard(PROCESSES) == 2, "both web processes beat")
        on_a = await console(ports["a"], token)
        ack = await on_a.call("set_status", {"status": "available"}, timeout=WAIT_S)
        assert ack["ok"], ack
        await until(lambda: sockets() == 1, "the console on A is counted")
        os.killpg(web["a"].pid, signal.SIGKILL)  # no disconnect handler runs: it just dies
        web["a"].wait(timeout=30)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(on_a.disconnect(), 5)
        on_b = await console(ports["b"], token)
        # A falls silent: its socket comes off, B's stays.
        await until(lambda: redis_client.zcard(PROCESSES) == 1, "the dead process is reaped")
        await until(lambda: sockets() == 1, "only the console on B counts")
        assert redis_client.hget(PRESENCE, agent) == "available"
        await on_b.disconnect()
        await until(
            lambda: redis_client.hget(PRESENCE, agent) == "disconnected",
            "closing the last console disconnects the agent",
        )
        assert sockets() == 0

    with ExitStack() as processes:
        web = start_deployment(processes, ports, logs, twilio_stub, WEB_PROCESS_SILENT_S="3")
        try:
            asyncio.run(scenario(web))
        except BaseException:
            for name, log in logs.items():
                print(f"--- {name} ---\n{tail(log)}")
            raise
    assert_invariants(app)
