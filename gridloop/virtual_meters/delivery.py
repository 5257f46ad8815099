"""A publisher's side of end-to-end delivery (contract.delivery): number envelopes, keep them in the outbox until
the platform says they are stored, resend what stays unacknowledged.

This replaces trusting the broker's PUBACK: a broker killed before the platform stored a message, or one that
drops messages while the platform's shared subscription is not back yet, costs nothing but a resend. It also
makes fixed waits after a reconnect unnecessary: whatever the broker dropped comes due again.
"""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt

from gridloop.contract import TopicKind, topic
from gridloop.contract.delivery import decode_ack
from gridloop.virtual_meters.outbox import Outbox

log = logging.getLogger(__name__)
RESEND_AFTER_S = 5.0  # an envelope unacknowledged this long is sent again
RESEND_EVERY_S = 1.0


class PlatformDelivery:
    """The outbox of one publisher, fed by its publishes and emptied by the platform's acknowledgements."""

    def __init__(self, tenant: str, publisher: str, outbox: Outbox, resend_after_s: float = RESEND_AFTER_S) -> None:
        self.outbox = outbox
        self.acks_topic = topic(tenant, TopicKind.ACKS, publisher)
        self.resend_after_s = resend_after_s
        self.readings_stored = 0  # readings the platform acknowledged as stored (or rejected for good)
        self.resent = 0  # envelopes sent again
        self._client: mqtt.Client | None = None
        self._acks = threading.Lock()  # the outbox and the count of what it gave up move together
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._resend_loop, name=f"delivery-{publisher}", daemon=True)

    def start(self, client: mqtt.Client) -> None:
        """Begin resending with ``client`` (already subscribed to :attr:`acks_topic`, see :meth:`on_message`)."""
        self._client = client
        self._thread.start()

    def number(self, topic_name: str, payload: bytes, readings: int) -> bytes:
        """The envelope as it must be published: numbered, and kept until acknowledged."""
        return self.outbox.add(topic_name, payload, readings)[1]

    def number_all(self, topic_name: str, envelopes: list[tuple[bytes, int]]) -> list[bytes]:
        """:meth:`number` for (payload, readings) envelopes, kept in one transaction."""
        return [payload for _, payload in self.outbox.add_many(topic_name, envelopes)]

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.acks_topic and (ids := decode_ack(msg.payload)):
            try:
                with self._acks:
                    self.readings_stored += self.outbox.acknowledge(ids)
            except Exception:  # never out into paho's network thread: the envelopes stay due and are resent
                log.exception("acknowledging %d envelopes failed", len(ids))

    def _resend_loop(self) -> None:
        while not self._stop.wait(RESEND_EVERY_S):
            client = self._client
            if client is None or not client.is_connected():
                continue
            try:
                for pending in self.outbox.due(self.resend_after_s):
                    client.publish(pending.topic, pending.payload, qos=1)
                    self.resent += 1
            except Exception:  # a closed outbox at shutdown, a client going away: try again next round
                log.debug("resending failed", exc_info=True)

    def settled(self) -> tuple[bool, int]:
        """(nothing published is left unacknowledged, readings the platform acknowledged), read together."""
        with self._acks:
            return len(self.outbox) == 0, self.readings_stored

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.outbox.close()
