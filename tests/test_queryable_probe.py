"""The publish → queryable probe of `gridloop run`: a real DIA publishes to a real platform, the probe times each
probe meter's reading from its publication to the first REST answer that holds it."""

from __future__ import annotations

import numpy as np

from gridloop.contract import BrokerAddress
from gridloop.mqtt_client import wait_for
from gridloop.results.queryable_latency import QueryableProbe
from gridloop.sdk import PlatformClient
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.electricity import MeterSample

T0 = 1767225600000
Q = "electricity.power.active.total"


def test_probe_times_each_probe_reading_once(platform, broker_uri):
    admin = PlatformClient(platform.url)
    key = admin.create_tenant("probe", platform.admin_key)
    admin.close()
    with PlatformClient(platform.url, key) as api:
        api.provision([{"id": d, "type": "electricity_meter", "gateway": "dia-1"} for d in ("m1", "m2", "m3")]
                      + [{"id": "dia-1", "type": "dia"}])
    probe = QueryableProbe(platform.url, key, ["m1", "m3"], poll_s=0.05).start()
    dia = DeviceIntegrationAdapter(BrokerAddress.parse(broker_uri), "probe", "dia-1", batch=2)
    dia.on_publish = probe.published
    try:
        for k in range(5):
            dia.publish(MeterSample(T0 + k * 60_000, ["m1", "m2", "m3"], np.full(3, k), {Q: np.arange(3.0) + k}))
        assert dia.flush(10.0)
        with PlatformClient(platform.url, key) as api:
            assert wait_for(lambda: api.metrics().readings_stored == 15, 10)
    finally:
        dia.close()
    got = probe.finish()
    assert (got.meters, got.readings, got.unseen, got.poll_s) == (["m1", "m3"], 10, 0, 0.05)
    assert 0 < got.p50_s <= got.p99_s <= got.max_s < 10
