"""One way to open a paho-mqtt v5 client, used by devices, DIAs, the controller and the platform alike."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridloop.contract import BrokerAddress


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
) -> mqtt.Client:
    """A connected client with its network loop running in a background thread."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    if username:
        client.username_pw_set(username, password)
    if broker.tls:
        client.tls_set()
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.connect(broker.host, broker.port, keepalive=30, clean_start=clean_start, properties=props)
    client.loop_start()
    if not connected.wait(timeout_s):
        client.loop_stop()
        raise ConnectionError(f"no MQTT connection to {broker} within {timeout_s:.0f} s")
    client.on_connect = None
    return client


def wait_for(predicate, timeout_s: float, poll_s: float = 0.01) -> bool:
    """Poll until predicate() is true or the timeout passes; True if it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return bool(predicate())
