"""What the benches share: starting and stopping servers, CPU time from /proc, free ports,
percentiles, small helpers.

Imported by the bench scripts as a sibling module (`python bench/<name>.py` puts `bench/` on
the path).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

HZ = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent


def proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_s(pid: int, reaped_children: bool = False) -> float:
    fields = proc_stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / HZ


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tree_cpu_s(pid: int) -> float:
    """A process, its live children and the children it reaped."""
    return cpu_s(pid, reaped_children=True) + sum(cpu_s(c) for c in children_of(pid))


def machine_busy_s() -> float:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / HZ


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def with_db(url: str, db: str) -> str:
    return urlparse(url)._replace(path=f"/{db}").geturl()


def start(command: list[str], env: dict, log: Path, preexec_fn=None) -> subprocess.Popen:
    """Run `command` from the repository root in its own process group, output to `log`
    (`preexec_fn` runs in the child before the command)."""
    with open(log, "wb") as log_file:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec_fn,  # noqa: PLW1509 (the benches start no threads first)
        )


def wait_http(
    proc: subprocess.Popen,
    port: int,
    path: str,
    log: Path,
    timeout: float,
    *,
    require_2xx: bool = False,
) -> float:
    """Seconds until `path` on `port` answers (with a 2xx if `require_2xx`); raises if the
    process dies or the time runs out."""
    start_at = time.monotonic()
    while time.monotonic() - start_at < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{tail(log)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if not require_2xx or 200 <= status < 300:
                return time.monotonic() - start_at
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered {path} on port {port} within {timeout} s:\n{tail(log)}")


def stop(proc: subprocess.Popen | None) -> int | None:
    """Terminate (gracefully), then kill its process group (a master and its workers)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode
