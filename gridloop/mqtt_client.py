"""One way to open a paho-mqtt v5 client, used by devices, DIAs, the controller and the platform alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridloop.contract import BrokerAddress, DeviceStatus, TopicKind, topic

V5_ATTEMPT_S = 3.0
KEEPALIVE_S = 30


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mqtts://: the CA that signed the broker's certificate, and the client's own pair."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None


def connect(
    broker: BrokerAddress,
    client_id: str,
    *,
    will: tuple[str, bytes] | None = None,
    clean_start: bool = True,
    session_expiry_s: int = 0,
    manual_ack: bool = False,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = 10.0,
    subscriptions: list[tuple[str, int]] | None = None,
    on_message: Callable | None = None,
    max_queued_messages: int = 0,
    reconnect_on_failure: bool = True,
    max_reconnect_delay_s: int = 10,
    tls: TlsFiles | None = None,
    receive_maximum: int | None = None,
    keepalive_s: int = KEEPALIVE_S,
) -> mqtt.Client:
    """A connected client with its network loop running in a background thread.

    MQTT v5 first; a broker that refuses v5 (the pure-Python fallback broker speaks 3.1.1 only)
    gets a 3.1.1 connection with the same persistent-session semantics. ``is_v5(client)`` tells which.
    ``receive_maximum`` (v5 only): the broker sends at most this many QoS 1/2 messages this client has not
    acknowledged yet, then holds the rest (flow control; with ``manual_ack`` it lasts until the client acks).
    """
    deadline = time.monotonic() + timeout_s
    for protocol in (mqtt.MQTTv5, mqtt.MQTTv311):
        client = _client(broker, client_id, protocol, will, clean_start, manual_ack, username, password,
                         reconnect_on_failure, tls)
        client.reconnect_delay_set(min_delay=1, max_delay=max_reconnect_delay_s)
        client.on_message = on_message
        client.max_queued_messages_set(max_queued_messages)  # 0: unbounded
        # a broker that does not speak v5 may just drop the socket: give v5 a few seconds, not the whole budget
        attempt_deadline = min(deadline, time.monotonic() + V5_ATTEMPT_S) if protocol == mqtt.MQTTv5 else deadline
        if _try_connect(client, broker, protocol, clean_start, session_expiry_s, attempt_deadline,
                        receive_maximum, keepalive_s):
            if subscriptions:  # return only once the broker granted them: nothing published after is missed
                granted = threading.Event()
                client.on_subscribe = lambda *_, granted=granted: granted.set()
                client.subscribe(subscriptions)
                granted.wait(max(0.5, deadline - time.monotonic()))
                client.on_subscribe = None
                # after a broker restart a clean session has no subscriptions left: renew them on every connect
                client.on_connect = lambda c, *_: c.subscribe(subscriptions)
            return client
    raise ConnectionError(f"no MQTT connection to {broker} within {timeout_s:.0f} s")


def is_v5(client: mqtt.Client) -> bool:
    """True if the client talks MQTT v5 (shared subscriptions, session expiry) with its broker."""
    return client.protocol == mqtt.MQTTv5


def _client(broker: BrokerAddress, client_id: str, protocol: int, will: tuple[str, bytes] | None, clean_start: bool,
            manual_ack: bool, username: str | None, password: str | None, reconnect_on_failure: bool,
            tls: TlsFiles | None = None) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, manual_ack=manual_ack,
        clean_session=None if protocol == mqtt.MQTTv5 else clean_start, reconnect_on_failure=reconnect_on_failure,
    )
    client.max_inflight_messages_set(1000)
    if username:
        client.username_pw_set(username, password)
    if broker.tls:  # mqtts://: the broker's CA, and a client certificate for mutual authentication if given
        tls = tls or TlsFiles()
        client.tls_set(ca_certs=tls.ca, certfile=tls.cert, keyfile=tls.key)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def _try_connect(client: mqtt.Client, broker: BrokerAddress, protocol: int, clean_start: bool,
                 session_expiry_s: int, deadline: float, receive_maximum: int | None = None,
                 keepalive_s: int = KEEPALIVE_S) -> bool:
    connected, refused = threading.Event(), threading.Event()

    def on_connect(c, u, flags, rc, props) -> None:
        (refused if rc.is_failure else connected).set()

    client.on_connect = on_connect
    client.on_disconnect = lambda *a: refused.set()
    if protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        if session_expiry_s:
            props.SessionExpiryInterval = session_expiry_s
        if receive_maximum:
            props.ReceiveMaximum = receive_maximum
        client.connect(broker.host, broker.port, keepalive=keepalive_s, clean_start=clean_start, properties=props)
    else:
        client.connect(broker.host, broker.port, keepalive=keepalive_s)
    client.loop_start()
    while time.monotonic() < deadline and not (connected.is_set() or refused.is_set()):
        time.sleep(0.005)
    client.on_connect = None
    client.on_disconnect = None
    if connected.is_set():
        return True
    client.loop_stop()
    client.disconnect()
    return False


def wait_for(predicate, timeout_s: float, poll_s: float = 0.01) -> bool:
    """Poll until predicate() is true or the timeout passes; True if it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return bool(predicate())


def wait_online(broker: BrokerAddress, tenant: str, devices: set[str], timeout_s: float,
                tls: TlsFiles | None = None, credentials: tuple[str, str] | None = None) -> None:
    """Block until every device's retained status on the broker says online; RuntimeError after timeout_s."""
    online: set[str] = set()

    def on_status(client, userdata, msg) -> None:
        if msg.payload.strip(b'"').decode(errors="replace") == DeviceStatus.ONLINE:
            online.add(msg.topic.rsplit("/", 1)[-1])

    watcher = connect(broker, f"gridloop-online-{tenant}-{time.monotonic_ns()}", tls=tls,
                      username=(credentials or (None, None))[0], password=(credentials or (None, None))[1],
                      subscriptions=[(topic(tenant, TopicKind.STATUS, "+"), 1)], on_message=on_status)
    try:
        if not wait_for(lambda: devices <= online, timeout_s):
            raise RuntimeError(f"not online after {timeout_s:.0f} s: {sorted(devices - online)}")
    finally:
        watcher.disconnect()
        watcher.loop_stop()
