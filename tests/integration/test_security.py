"""A real Mosquitto with TLS, per-device passwords and the ACL that `devices.provision` writes.

A throwaway CA made by ``openssl`` signs the broker's certificate; clients go through the ingest
adapter (``MqttEndpoint.from_url`` + ``make_client``), MQTT v5, QoS 1, so the broker's refusals
come back as reason codes: CONNACK for credentials, PUBACK for the ACL. What Mosquitto 2.0.11
answers is written down in docs/security.md.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import queue
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from ingest.mqtt import MqttEndpoint, make_client
from wardwatch import devices, embedded
from wardwatch.devices import Credential

pytestmark = pytest.mark.integration

# MQTT 5.0 reason codes (OASIS MQTT 5.0, section 2.4).
SUCCESS = 0x00
GRANTED_QOS_1 = 0x01
BAD_USER_NAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
NO_MATCHING_SUBSCRIBERS = 0x10  # accepted, nobody was listening
ACCEPTED = (SUCCESS, NO_MATCHING_SUBSCRIBERS)
WAIT_S = 10.0


class Probe:
    """A paho client from the ingest adapter; its callbacks only record what the broker answered."""

    def __init__(self, url: str, client_id: str) -> None:
        self.endpoint = MqttEndpoint.from_url(url)
        self.client = make_client(self.endpoint, client_id)
        self.connacks: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.closed = threading.Event()
        self._pubacks: dict[int, ReasonCode] = {}
        self._acked = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        self.connacks.put(rc)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        self.subacks.put(rcs)

    def _on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object
    ) -> None:
        with self._acked:
            self._pubacks[mid] = rc
            self._acked.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.messages.put((msg.topic, bytes(msg.payload)))

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, _rc: object, _p: object
    ) -> None:
        self.closed.set()

    def connect(self) -> ReasonCode | None:
        """Connect; the CONNACK's reason code, or None if the broker closed without one."""
        self.client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        self.client.loop_start()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                return self.connacks.get(timeout=0.05)
            except queue.Empty:
                if self.closed.is_set():  # paho reports a CONNACK before the close that follows
                    return None
        return None

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1; the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self._pubacks, WAIT_S), "no PUBACK"
            return self._pubacks[info.mid]

    def subscribe(self, topic_filter: str) -> ReasonCode:
        self.client.subscribe(topic_filter, qos=1)
        (rc,) = self.subacks.get(timeout=WAIT_S)
        return rc

    def received(self, until: bytes) -> list[tuple[str, bytes]]:
        """Messages up to and including the one whose payload is ``until``."""
        got: list[tuple[str, bytes]] = []
        while not got or got[-1][1] != until:
            got.append(self.messages.get(timeout=WAIT_S))
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # Our bound methods as its callbacks make a reference cycle; paho closes its wake-up
        # socket pair only in Client.__del__, which the cycle collector may run after the
        # sockets' own finalisers (ResourceWarning). Without the cycle, __del__ runs first.
        self.client.on_connect = None
        self.client.on_subscribe = None
        self.client.on_publish = None
        self.client.on_message = None
        self.client.on_disconnect = None


@dataclass(frozen=True)
class Ward:
    broker: embedded.SecureBroker
    config_dir: Path
    creds: dict[str, Credential]

    def url(self, username: str, password: str | None = None) -> str:
        pw = self.creds[username].password if password is None else password
        return self.broker.url(username, pw)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> embedded.TlsFiles:
    return embedded.make_test_tls(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def ward(tmp_path: Path, tls: embedded.TlsFiles) -> Iterator[Ward]:
    """Two provisioned watches and the ingestor, and a broker that enforces their files."""
    config = tmp_path / "mosquitto"
    creds = devices.provision(["dev-a", "dev-b"], config, ingestor="ingest")
    with embedded.mosquitto_tls(
        tmp_path / "broker",
        tls,
        password_file=config / devices.PASSWORD_FILE,
        acl_file=config / devices.ACL_FILE,
    ) as broker:
        yield Ward(broker, config, {c.username: c for c in creds})


MakeProbe = Callable[[str, str], Probe]


@pytest.fixture
def probe() -> Iterator[MakeProbe]:
    """``probe(url, client_id)``: a Probe that is closed after the test."""
    made: list[Probe] = []

    def make(url: str, client_id: str) -> Probe:
        made.append(Probe(url, client_id))
        return made[-1]

    yield make
    for p in made:
        p.close()
    made.clear()
    gc.collect()  # a leaked socket then fails this test, not whichever test happens to collect


def connected(probe: Probe) -> Probe:
    rc = probe.connect()
    assert rc is not None, "no CONNACK"
    assert rc.value == SUCCESS, str(rc)
    return probe


OWN = "wardwatch/v1/devices/dev-a/vitals"
STATUS = "wardwatch/v1/devices/dev-a/status"
OTHERS = "wardwatch/v1/devices/dev-b/vitals"


def test_device_publishes_its_own_readings_to_the_ingestor_over_tls(
    ward: Ward, probe: MakeProbe
) -> None:
    ingest = connected(probe(ward.url("ingest"), "ingest"))
    assert ingest.subscribe("wardwatch/v1/devices/+/+").value == GRANTED_QOS_1
    dev_a = connected(probe(ward.url("dev-a"), "dev-a"))
    sock = dev_a.client.socket()
    assert isinstance(sock, ssl.SSLSocket)
    assert sock.version() in ("TLSv1.2", "TLSv1.3")
    assert dev_a.publish(OWN, b'{"hr": 72}').value == SUCCESS
    assert ingest.received(until=b'{"hr": 72}') == [(OWN, b'{"hr": 72}')]


def test_the_ingestor_reads_through_a_shared_subscription(ward: Ward, probe: MakeProbe) -> None:
    # docs/scaling.md's workers subscribe to $share/ingest/...: Mosquitto 2.0 checks the ACL on
    # delivery against the message's own topic, so the read line suffices; no $share entry.
    workers = [connected(probe(ward.url("ingest"), f"ingest-{n}")) for n in (1, 2)]
    for w in workers:
        assert w.subscribe("$share/ingest/wardwatch/v1/devices/+/vitals").value == GRANTED_QOS_1
    dev_a = connected(probe(ward.url("dev-a"), "dev-a"))
    for n in range(4):
        assert dev_a.publish(OWN, b"%d" % n).value == SUCCESS
    got: list[bytes] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < 4 and time.monotonic() < deadline:
        for w in workers:
            with contextlib.suppress(queue.Empty):
                got.append(w.messages.get(timeout=0.05)[1])
    assert sorted(got) == [b"0", b"1", b"2", b"3"]  # each once, to one worker or the other


def test_a_device_writing_to_another_devices_topic_is_refused(ward: Ward, probe: MakeProbe) -> None:
    ingest = connected(probe(ward.url("ingest"), "ingest"))
    ingest.subscribe("wardwatch/v1/devices/+/+")
    dev_a = connected(probe(ward.url("dev-a"), "dev-a"))

    assert dev_a.publish(OTHERS, b"forged").value == NOT_AUTHORIZED
    dev_a.client.publish(OTHERS, b"forged at QoS 0", qos=0)  # no answer; dropped all the same
    assert dev_a.publish(STATUS, b"status").value == SUCCESS  # anywhere in its own subtree
    assert dev_a.publish("elsewhere/x", b"x").value == NOT_AUTHORIZED
    # dev-a's later message arrives; the forged ones, published before it, never did.
    assert dev_a.publish(OWN, b"marker").value == SUCCESS
    assert [payload for _, payload in ingest.received(until=b"marker")] == [b"status", b"marker"]
    assert not dev_a.closed.is_set()  # refused, not disconnected: MQTT v5 lets the broker say why


def test_a_device_cannot_listen_to_another_device(ward: Ward, probe: MakeProbe) -> None:
    ingest = connected(probe(ward.url("ingest"), "ingest"))
    ingest.subscribe("wardwatch/v1/devices/+/+")
    dev_b = connected(probe(ward.url("dev-b"), "dev-b"))
    # Mosquitto 2.0's ACL file is not consulted on SUBSCRIBE (it grants this), only on delivery;
    # a later version that refuses the SUBSCRIBE outright is just as good.
    assert dev_b.subscribe("wardwatch/v1/devices/+/vitals").value in (GRANTED_QOS_1, NOT_AUTHORIZED)
    dev_a = connected(probe(ward.url("dev-a"), "dev-a"))
    dev_a.publish(OWN, b"private")
    ingest.received(until=b"private")
    with pytest.raises(queue.Empty):
        dev_b.messages.get(timeout=0.5)


def test_the_ingestor_cannot_inject_readings(ward: Ward, probe: MakeProbe) -> None:
    ingest = connected(probe(ward.url("ingest"), "ingest"))
    assert ingest.publish(OWN, b"injected").value == NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("username", "password"),
    [("dev-a", "wrong"), ("dev-a", ""), ("nobody", "x"), ("dev-a", None)],
    ids=["wrong-password", "empty-password", "unknown-user", "no-password"],
)
def test_bad_credentials_are_refused_at_connect(
    ward: Ward, probe: MakeProbe, username: str, password: str | None
) -> None:
    url = ward.broker.url(username, password)
    rc = probe(url, "intruder").connect()
    assert rc is not None
    assert rc.value in (BAD_USER_NAME_OR_PASSWORD, NOT_AUTHORIZED), str(rc)  # 2.0.11: 0x87


def test_anonymous_is_refused(ward: Ward, probe: MakeProbe) -> None:
    rc = probe(ward.broker.url(), "anonymous").connect()
    assert rc is not None
    assert rc.value == NOT_AUTHORIZED, str(rc)


def test_plaintext_to_the_tls_port_gets_no_session(ward: Ward, probe: MakeProbe) -> None:
    creds = ward.creds["dev-a"]
    plain = probe(f"mqtt://dev-a:{creds.password}@127.0.0.1:{ward.broker.port}", "plain")
    assert plain.connect() is None  # no CONNACK: the broker reads our CONNECT as a bad TLS hello
    assert plain.closed.wait(WAIT_S)


# paho 2.2 does not close its socket when the TLS handshake fails (client.py, _ssl_wrap_socket).
@pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")
def test_a_client_refuses_a_broker_its_ca_did_not_sign(
    ward: Ward, probe: MakeProbe, tmp_path: Path
) -> None:
    other = embedded.make_test_tls(tmp_path / "other-ca")
    url = ward.url("dev-a").split("?")[0] + f"?ca={other.ca_file}"
    with pytest.raises(ssl.SSLCertVerificationError):
        probe(url, "dev-a").connect()
    gc.collect()  # the leaked socket's warning, here where it is filtered


def test_reprovisioning_rotates_the_password_on_reload(ward: Ward, probe: MakeProbe) -> None:
    old = ward.creds["dev-a"]
    dev_a = connected(probe(ward.url("dev-a"), "dev-a"))
    dev_b = connected(probe(ward.url("dev-b"), "dev-b"))

    (new,) = devices.provision(["dev-a"], ward.config_dir)
    assert new.password != old.password
    before_reload = connected(probe(ward.url("dev-a", old.password), "before-reload"))

    ward.broker.reload()
    # Mosquitto 2.0 re-checks connected clients on reload: sessions on the old password end.
    assert dev_a.closed.wait(WAIT_S)
    assert before_reload.closed.wait(WAIT_S)
    rc = probe(ward.url("dev-a", old.password), "old-password").connect()
    assert rc is not None
    assert rc.value == NOT_AUTHORIZED, str(rc)
    fresh = connected(probe(ward.url("dev-a", new.password), "new-password"))
    assert fresh.publish(OWN, b"after rotation").value in ACCEPTED
    # Everybody else is untouched.
    assert not dev_b.closed.is_set()
    assert dev_b.publish(OTHERS, b"still here").value in ACCEPTED


def test_mosquitto_passwd_and_provision_share_one_file(ward: Ward, probe: MakeProbe) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    pwfile = ward.config_dir / devices.PASSWORD_FILE
    ours = pwfile.read_text()
    # The tool reads our lines without complaint and leaves them alone...
    subprocess.run([tool, "-b", str(pwfile), "by-hand", "hand-pw"], check=True)
    lines = pwfile.read_text().splitlines()
    assert lines[:3] == ours.splitlines()
    # ... and, given its salt, we write exactly its line.
    salt = base64.b64decode(lines[3].split("$")[3])
    assert devices.password_line("by-hand", "hand-pw", salt=salt) == lines[3]

    ward.broker.reload()
    by_hand = connected(probe(ward.broker.url("by-hand", "hand-pw"), "by-hand"))
    # A user without an ACL block may connect, and do nothing: the ACL denies by default.
    assert by_hand.publish("wardwatch/v1/devices/by-hand/vitals", b"x").value == NOT_AUTHORIZED
