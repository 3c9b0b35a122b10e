"""Test-side MQTT through Mosquitto's own command-line clients (``mosquitto_pub``,
``mosquitto_sub``), so the secured broker's tests need nothing of the nodes' TLS support."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from broker.mosquitto import MosquittoBroker
from broker.secure import SecureDir
from tests.mqtt_helpers import wait_until


def login(broker: MosquittoBroker | int, secure: SecureDir, user: str | None,
          password: str | None = None, cafile: Path | bool = True) -> list[str]:
    """Connection options to the broker (or port) for ``user`` (None: anonymous) with its own
    password (or ``password``) and the deployment's CA (or ``cafile``; False: no TLS)."""
    port = broker if isinstance(broker, int) else broker.port
    args = ["-h", "127.0.0.1", "-p", str(port)]
    if cafile is not False:
        args += ["--cafile", str(secure.ca_cert if cafile is True else cafile)]
    if user is not None:
        args += ["-u", user, "-P", password if password is not None else secure.password(user)]
    return args


def publish(args: list[str], topic: str, payload: str, *, retain: bool = False,
            ) -> subprocess.CompletedProcess:
    """One QoS 1 message over MQTT 5 (the broker says in the PUBACK when it refuses it); the
    command exits after the PUBACK, so the broker has routed the message by then."""
    return subprocess.run(["mosquitto_pub", *args, "-V", "5", "-q", "1", "-t", topic,
                           "-m", payload, *(["-r"] if retain else [])],
                          capture_output=True, text=True, timeout=20)


class Subscriber:
    """A ``mosquitto_sub -d -v`` process (line-buffered by ``stdbuf``): its messages
    (``topic payload`` lines) and its debug lines (``Client ... received SUBACK``,
    ``... PINGRESP``) as they come."""

    def __init__(self, args: list[str], *filters: str, keepalive: int = 60) -> None:
        subs = [a for f in filters for a in ("-t", f)]
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", *args, "-d", "-v", "-q", "1",
             "-k", str(keepalive), *subs],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _poll(self) -> None:
        with self._changed:
            self._changed.wait(0.05)

    @property
    def messages(self) -> list[str]:
        return [line for line in self.lines if not line.startswith("Client ")
                and not line.startswith("Subscribed (")]

    def count(self, word: str) -> int:
        return sum(1 for line in self.lines if line.startswith("Client ") and word in line)

    def wait(self, condition, what: str, timeout: float = 15) -> None:
        """Until ``condition()``; fail at the deadline, or at once when the process is gone."""
        def done() -> bool:
            if condition():
                return True
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"mosquitto_sub exited ({self.proc.returncode}) before "
                                     f"{what}: {self.lines[-3:]}")
            return False
        wait_until(done, timeout, self._poll, what)

    def wait_subscribed(self) -> None:
        self.wait(lambda: self.count("received SUBACK") > 0, "the SUBACK")

    def close(self) -> None:
        """Kill it: mosquitto_sub's SIGTERM handler disconnects from inside the signal handler
        and now and then does not exit (seen with ``-k 5``); a test client owes no goodbye."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self._reader.join(5)
        self.proc.stdout.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
