"""Fixtures: a real mosquitto per test on a free loopback port, a topic prefix per test."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.address import BrokerAddress
from broker.bridge import BridgeSpec, bridge_lines
from broker.mosquitto import MosquittoBroker
from broker.secure import generate
from broker.topics import Topics
from fleetlearn.bench.tls import TlsMosquitto
from tests.netsim import DelayProxy, SiteNamespace, netns_unavailable

#: The one user of :func:`tls_broker`, and its password.
TLS_USER, TLS_PASSWORD = "fleet", "s3cret-pw"


@pytest.fixture(autouse=True)
def state_home(tmp_path_factory, monkeypatch) -> Path:
    """No test writes into the home directory: a node's default state dir
    (``$XDG_STATE_HOME/fleetlearn/...``, e.g. an aggregator's checkpoints) is a temp dir, for
    the test and every process it starts. Nor into /tmp: what a command keeps there for its
    user (`up`'s logs without ``--log-dir``) goes into pytest's own temp dirs, which it prunes
    (before, every CI run left ~40 `fleetlearn-up-*` dirs)."""
    home = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    scratch = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return home


def owned(broker):
    """Yield a started broker; afterwards stop it and check its process is gone."""
    pid = broker.process.pid
    try:
        yield broker
    finally:
        broker.stop()
        assert not process_alive(pid)


@pytest.fixture
def mosquitto(tmp_path) -> Iterator[MosquittoBroker]:
    """A mosquitto process of this test's own: its config, data dir and port."""
    broker = MosquittoBroker(data_dir=tmp_path / "broker").start()
    yield from owned(broker)


@pytest.fixture
def tls_broker(tmp_path) -> Iterator[TlsMosquitto]:
    """A mosquitto of this test's own with a TLS listener only (a throwaway CA and server
    certificate for 127.0.0.1) and one user, :data:`TLS_USER`; no anonymous client."""
    broker = TlsMosquitto(users={TLS_USER: TLS_PASSWORD}, directory=tmp_path / "tls").start()
    yield from owned(broker)


@pytest.fixture
def address(mosquitto: MosquittoBroker) -> BrokerAddress:
    return BrokerAddress(port=mosquitto.port)


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


def process_alive(pid: int) -> bool:
    """True while a process with this pid exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


@pytest.fixture
def secure_mosquitto(tmp_path, prefix) -> Iterator[MosquittoBroker]:
    """A secured mosquitto of this test's own (TLS, passwords, the ACL for ``prefix``) with
    its files generated under ``tmp_path / "secure"``: users ``gw-0``, ``gw-1``, the nodes of
    :data:`broker.acl.NODE_USERS` and the devices ``s0-d0001``, ``s0-d0002``."""
    files = generate(tmp_path / "secure", Topics(prefix), gateways=2,
                     devices=("s0-d0001", "s0-d0002"))
    broker = MosquittoBroker(data_dir=tmp_path / "broker", secure=files).start()
    yield from owned(broker)


@pytest.fixture
def core_broker(tmp_path) -> Iterator[MosquittoBroker]:
    """The core broker of a bridged test: a mosquitto of this test's own on loopback."""
    broker = MosquittoBroker(data_dir=tmp_path / "core").start()
    yield from owned(broker)


@pytest.fixture
def site_brokers(tmp_path, prefix) -> Iterator[Callable[..., MosquittoBroker]]:
    """Start site brokers bridged to a core (``make(core_port, site, **BridgeSpec fields)``);
    every one started is stopped, and its process checked gone, when the test ends."""
    started: list[MosquittoBroker] = []

    def make(core_port: int, site: str = "s0", core_host: str = "127.0.0.1",
             **spec: object) -> MosquittoBroker:
        lines = bridge_lines(Topics(prefix), BridgeSpec(site, core_host, core_port, **spec))
        broker = MosquittoBroker(data_dir=tmp_path / f"site-{site}", bridge=lines)
        started.append(broker)
        return broker.start()

    yield make
    pids = [b.process.pid for b in started if b.process is not None]
    for broker in started:
        broker.stop()
    assert not any(process_alive(pid) for pid in pids)


@pytest.fixture
def netns_factory() -> Iterator[Callable[[], SiteNamespace]]:
    """Make network namespaces for sites, each joined to this host by a slow (tbf) site-core
    veth link and a management link (tests/netsim.py); every one is removed, links and all,
    when the test ends. Skips where that cannot be done (not root, no iproute2)."""
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    made: list[SiteNamespace] = []

    def make() -> SiteNamespace:
        made.append(SiteNamespace())
        return made[-1].create()

    try:
        yield make
    finally:
        for ns in made:
            ns.remove()
        try:
            assert not any(ns.exists() for ns in made), "a namespace or link outlived the test"
        finally:
            for ns in made:
                ns.release()


@dataclass
class RemoteSite:
    """A site broker in its namespace, bridged to the core through a delay proxy."""

    ns: SiteNamespace
    broker: MosquittoBroker
    proxy: DelayProxy
    address: BrokerAddress  # where the test (and the site's nodes) reach the site broker


#: The site broker's port inside its namespace (a namespace has every port to itself).
SITE_PORT = 18830


@pytest.fixture
def remote_sites(netns_factory, core_broker, tmp_path, prefix
                 ) -> Iterator[Callable[..., RemoteSite]]:
    """Start site brokers, each in a namespace of its own, bridged over its slow link and a
    delay proxy (50 ms +- 20 ms each way, a 1 s stall every 7 s) to ``core_broker``
    (``make(site, **BridgeSpec fields)``); a bridge notices a dead link in about 7.5 s
    (keepalive 5 s) and retries every 1-3 s. All stopped (processes checked gone) at the end."""
    made: list[RemoteSite] = []

    def make(site: str = "s0", **spec: object) -> RemoteSite:
        ns = netns_factory()
        proxy = DelayProxy((ns.core_side, 0), ("127.0.0.1", core_broker.port),
                           latency=0.05, jitter=0.02, stall_every=7.0, stall=1.0)
        lines = bridge_lines(Topics(prefix), BridgeSpec(site, ns.core_side, proxy.port,
                                                        restart=(1, 3), **spec))
        broker = MosquittoBroker(SITE_PORT, tmp_path / f"site-{site}", bind="0.0.0.0",
                                 bridge=lines, netns=ns.name)
        made.append(RemoteSite(ns, broker, proxy, BrokerAddress(ns.site_mgmt, SITE_PORT)))
        broker.start()
        return made[-1]

    try:
        yield make
    finally:
        pids = [r.broker.process.pid for r in made if r.broker.process is not None]
        for remote in reversed(made):
            remote.broker.stop()
            remote.proxy.close()
        assert not any(process_alive(pid) for pid in pids)


@pytest.fixture
def remote_site(remote_sites) -> RemoteSite:
    """Site s0's broker in a namespace of its own, bridged (flat) over a slow, delayed link."""
    return remote_sites("s0")
