"""Where the broker is and how to log in: an address parsed from ``HOST:PORT``,
``mqtt://HOST:PORT`` or ``mqtts://HOST:PORT``, and the errors when it is not there or says no.

Pure (no paho): the CLI, the deployment and the benchmarks parse and pass addresses around;
only :mod:`broker.client_factory` turns one into a connection.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

#: Default port by scheme.
PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerUnreachable(RuntimeError):
    """The broker did not accept a connection in time."""


class BrokerRefused(RuntimeError):
    """The broker (or its TLS listener) refused us: bad credentials, not authorised, or a
    certificate that does not verify. Trying again would not help, so a node raises it once."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, and how to log in: ``tls`` on, the CA file that verifies the
    broker's certificate (``ca``; None: the system's), and for mutual TLS the client's
    ``cert`` and ``key``. The password is never shown, not even in the repr.

    >>> BrokerAddress(username="gw", password="s3cret")
    BrokerAddress(host='127.0.0.1', port=1883, username='gw', tls=False,
                  ca=None, cert=None, key=None)
    """

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def parse(cls, text: str) -> BrokerAddress:
        """Parse ``HOST:PORT`` or ``HOST`` (port 1883), ``mqtt://HOST[:PORT]`` (1883) or
        ``mqtts://HOST[:PORT]`` (TLS, 8883).

        >>> BrokerAddress.parse("127.0.0.1:18830")
        BrokerAddress(host='127.0.0.1', port=18830, username=None, tls=False,
                      ca=None, cert=None, key=None)
        >>> str(BrokerAddress.parse("broker.local")), str(BrokerAddress.parse("mqtt://b:1884"))
        ('broker.local:1883', 'b:1884')
        >>> a = BrokerAddress.parse("mqtts://broker.example")
        >>> a.tls, a.port, str(a)
        (True, 8883, 'mqtts://broker.example:8883')
        >>> BrokerAddress.parse("mqtts://[::1]:9883").host
        '::1'
        >>> BrokerAddress.parse("http://b:80")
        Traceback (most recent call last):
        ValueError: broker address 'http://b:80': the scheme must be mqtt:// or mqtts://
        >>> BrokerAddress.parse("b:99999")
        Traceback (most recent call last):
        ValueError: broker address 'b:99999' is not HOST:PORT
        """
        scheme, sep, rest = text.partition("://")
        if not sep:
            scheme, rest = "mqtt", text
        if scheme not in PORTS:
            raise ValueError(f"broker address {text!r}: the scheme must be mqtt:// or mqtts://")
        host, _, port = rest.rpartition(":")
        if not host or "]" in port:  # no port (or an IPv6 literal without one)
            host, port = rest, str(PORTS[scheme])
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"broker address {text!r} is not HOST:PORT")
        return cls(host=host, port=int(port), tls=scheme == "mqtts")

    def __str__(self) -> str:
        """``HOST:PORT`` for a plain connection (what ``--broker`` reads back), ``mqtts://``
        in front for TLS; never the password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts://' if self.tls else ''}{host}:{self.port}"


    # ------------------------------------------------------------ what went wrong, and what to do

    def refused(self, reason: str) -> BrokerRefused:
        """The error for a CONNACK that says no (Mosquitto says "not authorized" for a wrong
        password too), naming the cause and what to do.

        >>> print(BrokerAddress(port=8883, tls=True, username="u").refused(
        ...     "Bad user name or password"))
        broker mqtts://127.0.0.1:8883 refused the connection: bad user name or password
        (check --username/--password or FLEETLEARN_PASSWORD)
        >>> print(BrokerAddress().refused("Not authorized"))
        broker 127.0.0.1:1883 refused the connection: not authorized (it wants a user: give
        --username and --password or FLEETLEARN_PASSWORD)
        """
        cause = reason.lower()
        if self.username is None and cause in ("not authorized", "bad user name or password"):
            hint = "it wants a user: give --username and --password or FLEETLEARN_PASSWORD"
        elif cause in ("not authorized", "bad user name or password"):
            hint = "check --username/--password or FLEETLEARN_PASSWORD"
        else:
            hint = "see the broker's log"
        return BrokerRefused(f"broker {self} refused the connection: {cause} ({hint})")

    def tls_failed(self, exc: Exception | str) -> BrokerRefused:
        """The error for a TLS handshake that failed, naming the cause and what to do.

        >>> err = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] "
        ...                                       "certificate verify failed: self-signed "
        ...                                       "certificate in certificate chain (_ssl.c:1006)")
        >>> print(BrokerAddress(port=8883, tls=True).tls_failed(err))
        TLS with broker mqtts://127.0.0.1:8883 failed: certificate verify failed: self-signed
        certificate in certificate chain (check --tls-ca: the CA that signed the broker's
        certificate)
        """
        text = str(exc).split("] ", 1)[-1].split(" (_ssl", 1)[0]
        if isinstance(exc, ssl.SSLCertVerificationError) or "unknown ca" in text.lower():
            hint = "check --tls-ca: the CA that signed the broker's certificate"
        elif "certificate required" in text.lower() or "eof occurred" in text.lower():
            hint = "does the broker want a client certificate? --tls-cert and --tls-key"
        elif "wrong version" in text.lower() or "record layer" in text.lower():
            hint = "is it a TLS listener? HOST:PORT or mqtt:// for a plain one"
        else:
            hint = "check --tls-ca, --tls-cert and --tls-key"
        return BrokerRefused(f"TLS with broker {self} failed: {text} ({hint})")

    def unreachable(self, exc: OSError | None = None) -> BrokerUnreachable:
        """The error for a broker that did not answer in time (``exc``: the last attempt's).

        >>> print(BrokerAddress(port=8883).unreachable())
        the broker at 127.0.0.1:8883 did not accept us (a TLS listener? use mqtts://)
        """
        if exc is None:
            hint = "" if self.tls else " (a TLS listener? use mqtts://)"
            return BrokerUnreachable(f"the broker at {self} did not accept us{hint}")
        hint = " (a plain listener? HOST:PORT or mqtt://)" if self.tls else ""
        return BrokerUnreachable(f"cannot reach the broker at {self} ({exc}); is it running? "
                                 f"`fleetlearn broker` starts one{hint}")


def tls_context(broker: BrokerAddress) -> ssl.SSLContext:
    """TLS 1.2 or later, the broker's certificate verified against ``broker.ca`` (None: the
    system's CAs) and its host name; the client's certificate and key for mutual TLS. A file
    that cannot be read is a :class:`~broker.address.BrokerRefused` naming it.

    >>> ctx = tls_context(BrokerAddress(tls=True))
    >>> ctx.minimum_version >= ssl.TLSVersion.TLSv1_2, ctx.check_hostname
    (True, True)
    >>> tls_context(BrokerAddress(tls=True, ca="/nonexistent/ca.pem"))
    Traceback (most recent call last):
    broker.address.BrokerRefused: cannot use the TLS CA file /nonexistent/ca.pem (--tls-ca): ...
    """
    which = "the TLS CA file", broker.ca, "--tls-ca"
    try:
        ctx = ssl.create_default_context(cafile=broker.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if broker.cert is not None or broker.key is not None:
            which = ("the TLS client certificate/key", broker.cert or broker.key,
                     "--tls-cert/--tls-key")
            ctx.load_cert_chain(broker.cert or broker.key, broker.key)  # type: ignore[arg-type]
    except (OSError, ssl.SSLError) as exc:
        what, path, option = which
        raise BrokerRefused(f"cannot use {what} {path} ({option}): "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    return ctx
