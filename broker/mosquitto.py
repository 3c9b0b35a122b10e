"""Run a Mosquitto broker for one deployment: its own config, port, data and log dir.

>>> print(render_config(port=18830, data_dir=Path("/tmp/d"), run_as="mosquitto"), end="")
# fleetlearn broker (generated): one listener, its own data and log.
listener 18830 127.0.0.1
allow_anonymous true
user mosquitto
persistence true
persistence_location /tmp/d/
# Save retained messages and kept sessions every second, not every 30 minutes: a kill -9
# then loses at most a second of them.
autosave_interval 1
# A kept session (gateways, aggregator, predictor) whose node has not come back in an hour goes.
persistent_client_expiration 1h
log_dest file /tmp/d/mosquitto.log
log_type error
log_type warning
log_type notice
# Readings are small; a learner's update or a model is a few KiB.
max_packet_size 1048576
# QoS 1 backlog a slow or absent subscriber may build before the broker drops (default 1000,
# no byte limit): 200,000 messages or 128 MiB, whichever comes first.
max_queued_messages 200000
max_queued_bytes 134217728
# QoS 1 messages sent to a subscriber before its acknowledgements (default 20).
max_inflight_messages 1000
# Send small packets at once: Nagle would hold a model behind the previous packet's ACK.
set_tcp_nodelay true
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from broker.pki import write_private
from broker.processes import die_with_parent, stop_process
from broker.secure import SecureDir

#: What the broker fleetlearn starts sets, and a node checks on a broker it did not start.
MAX_QUEUED_MESSAGES = 200_000
MAX_QUEUED_BYTES = 128 * 1024 * 1024
MAX_INFLIGHT_MESSAGES = 1000
AUTOSAVE_INTERVAL = 1
SESSION_EXPIRATION = "1h"


class BrokerError(RuntimeError):
    """The broker could not be started."""


def render_config(
    port: int,
    data_dir: Path,
    *,
    bind: str = "127.0.0.1",
    run_as: str | None = None,
    max_packet_size: int = 1024 * 1024,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
    secure: SecureDir | None = None,
    require_certificate: bool = False,
    bridge: Sequence[str] = (),
) -> str:
    """The mosquitto.conf for one deployment; with ``secure``, its one listener speaks TLS
    only and every client logs in (:meth:`broker.secure.SecureDir.broker_lines`); ``bridge``:
    a bridge section (:func:`broker.bridge.bridge_lines`), last, as Mosquitto wants it."""
    user = run_as or getpass.getuser()
    access = (["allow_anonymous true"] if secure is None
              else secure.broker_lines(require_certificate))
    return "\n".join([
        "# fleetlearn broker (generated): one listener, its own data and log.",
        f"listener {port} {bind}",
        *access,
        f"user {user}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "# Save retained messages and kept sessions every second, not every 30 minutes: a kill -9",
        "# then loses at most a second of them.",
        f"autosave_interval {AUTOSAVE_INTERVAL}",
        "# A kept session (gateways, aggregator, predictor) whose node has not come back in an"
        " hour goes.",
        f"persistent_client_expiration {SESSION_EXPIRATION}",
        f"log_dest file {data_dir}/mosquitto.log",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "# Readings are small; a learner's update or a model is a few KiB.",
        f"max_packet_size {max_packet_size}",
        "# QoS 1 backlog a slow or absent subscriber may build before the broker drops (default"
        " 1000,",
        "# no byte limit): 200,000 messages or 128 MiB, whichever comes first.",
        f"max_queued_messages {max_queued_messages}",
        f"max_queued_bytes {MAX_QUEUED_BYTES}",
        "# QoS 1 messages sent to a subscriber before its acknowledgements (default 20).",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        "# Send small packets at once: Nagle would hold a model behind the previous packet's ACK.",
        "set_tcp_nodelay true",
        *bridge,
        "",
    ])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def find_mosquitto() -> str:
    """Path of the mosquitto binary, or a :class:`BrokerError` that says how to install it."""
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerError("mosquitto is not installed: run `sudo apt-get install mosquitto`")


def listening_inodes(port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6"),
                     ) -> set[str] | None:
    """Inodes of the sockets listening on TCP ``port`` (Linux ``/proc``), None without it.

    >>> with socket.socket() as s:
    ...     s.bind(("127.0.0.1", 0)); s.listen()
    ...     found = listening_inodes(s.getsockname()[1])
    >>> found is None or len(found) == 1
    True
    """
    inodes: set[str] = set()
    readable = False
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()  # sl local remote st ... inode (10th)
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes if readable else None


def holds_listener(pid: int, port: int, host: str = "127.0.0.1") -> bool:
    """True when process ``pid`` itself listens on ``port`` (not merely someone else); where
    ``/proc`` cannot tell, when the port accepts a connection."""
    # the process's own view of the sockets: in another network namespace it is not ours
    inodes = listening_inodes(port, (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"))
    if inodes is None:
        return port_accepts(host, port)
    try:
        fds = Path(f"/proc/{pid}/fd")
        return any(os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes
                   for fd in fds.iterdir())
    except OSError:
        return port_accepts(host, port)


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class MosquittoBroker:
    """A mosquitto process this object started, and only that one.

    Use as a context manager; ``port=None`` picks a free loopback port.
    """

    def __init__(self, port: int | None = None, data_dir: Path | None = None,
                 bind: str = "127.0.0.1", secure: SecureDir | None = None,
                 require_certificate: bool = False, bridge: Sequence[str] = (),
                 netns: str | None = None) -> None:
        """``secure``: a TLS listener with passwords and the ACL of these files; ``bridge``:
        the config lines of a bridge (:func:`broker.bridge.bridge_lines`); ``netns``: run in
        that network namespace (``ip netns exec``; give ``port``, as ours says nothing of its
        free ports)."""
        self.bridge, self.netns = list(bridge), netns
        self.bind = bind
        self.secure, self.require_certificate = secure, require_certificate
        self.port = port
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="fleetlearn-broker-"))
        self.process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        binary = find_mosquitto()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.port else 5
        detail = "no attempt"
        for _ in range(attempts):
            port = self.port or free_port(self.bind)
            conf = self.data_dir / "mosquitto.conf"
            # a bridge's config may hold its password: the owner's only
            write_private(conf, render_config(
                port, self.data_dir, bind=self.bind, secure=self.secure,
                require_certificate=self.require_certificate, bridge=self.bridge).encode())
            inside = ["ip", "netns", "exec", self.netns] if self.netns else []
            # A session of its own: a Ctrl-C at the terminal is for whoever started it, which
            # stops it in turn; and it dies with its parent (the parent-death signal).
            self.process = subprocess.Popen(
                [*inside, binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent,
            )
            if self._wait_ready(port, timeout):
                self.port = port
                return self
            detail = self._failure_detail()
            self.stop()
        raise BrokerError(f"mosquitto did not start: {detail}")

    def _wait_ready(self, port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if holds_listener(self.process.pid, port, self.bind):
                return self.process.poll() is None
            time.sleep(0.02)
        return False

    def _failure_detail(self) -> str:
        err = b""
        if self.process is not None and self.process.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                err = self.process.stderr.read() or b""
        text = err.decode(errors="replace").strip()
        if self.log_path.exists():
            text += "\n" + self.log_path.read_text(errors="replace").strip()
        lines = [line for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if "Error" in line]  # e.g. "Address already in use"
        return (errors or lines or ["no output (see the log)"])[-1]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process this object started and wait for it."""
        proc, self.process = self.process, None
        if proc is None:
            return
        stop_process(proc, timeout, kill_timeout=timeout)
        if proc.stderr is not None:
            proc.stderr.close()
        self._stopped_pid = proc.pid

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        try:
            return self.start()
        except BaseException:  # a failed start, or Ctrl-C/SIGTERM while waiting for it
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
