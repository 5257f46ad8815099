"""``Meters``: gridloop's home meters and their DIA as a mosaik simulator (model ``Meter``).

mosaik drives the clock; the meters integrate what they are fed, read at the scenario's interval, and the DIA
publishes the readings over MQTT to a gridloop platform, which stores them exactly as in ``gridloop run``.
The meters are provisioned over the platform's REST API (``gridloop.sdk``) when mosaik's setup is done.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from gridloop.contract import BrokerAddress, DeviceType, Phase
from gridloop.contract.devices import PHASES, MeterMeta
from gridloop.mosaik.common import API_VERSION, SimClock, entity, scenario_of
from gridloop.mqtt_client import TlsFiles
from gridloop.sdk import PlatformClient
from gridloop.stage import ms
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.home_meters import HomeMeterFleet
from gridloop.virtual_meters.outbox import Outbox

try:
    import mosaik_api_v3
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError("gridloop.mosaik needs the mosaik extra: pip install 'gridloop[mosaik]'") from exc

PHASE_ATTRS = ("p_a_w", "p_b_w", "p_c_w", "q_a_var", "q_b_var", "q_c_var")  # the Home's per-phase outputs
META = {
    "api_version": API_VERSION,
    "type": "time-based",
    "models": {
        "Meter": {"public": True, "params": ["bus", "phase", "vn_kv"],
                  "attrs": ["vm_pu", "p_mw", "q_mvar", *PHASE_ATTRS, "v_a_v", "readings"]},
    },
}


class Meters(mosaik_api_v3.Simulator):
    """Home meters fed by mosaik (voltage from a bus, P/Q from a home), published by one DIA."""

    def __init__(self) -> None:
        super().__init__(META)
        self.fleet: HomeMeterFleet | None = None
        self.dia: DeviceIntegrationAdapter | None = None
        self.entities: list[dict] = []
        self.published = 0

    def init(self, sid: str, time_resolution: float = 1.0, scenario: str | None = None, seed: int | None = None,
             broker: str | None = None, api_url: str | None = None, api_key: str | None = None,
             tenant: str | None = None, dia_id: str | None = None, mqtt_username: str | None = None,
             mqtt_password: str | None = None, outbox: str | None = None, **sim_params: object) -> dict:
        """The scenario gives interval, seed, start, tenant and DIA id; broker and API are the platform's.

        ``outbox``: the file the DIA keeps unacknowledged envelopes in (default: in memory), as ``gridloop run``'s.
        """
        if scenario is None or broker is None or api_url is None:
            raise ValueError("Meters needs scenario=, broker= (mqtt://host:port) and api_url= of a gridloop platform")
        s = scenario_of(scenario, seed)
        self.s = s
        self.clock = SimClock(float(time_resolution), s.clock.step)
        self.epoch_ms = ms(pd.Timestamp(s.clock.start).timestamp())
        self.broker = BrokerAddress.parse(broker)
        self.tenant = tenant or s.platform.tenant
        self.dia_id = dia_id or s.platform.dia_id
        user = mqtt_username or os.environ.get("GRIDLOOP_MQTT_USERNAME")
        password = mqtt_password or os.environ.get("GRIDLOOP_MQTT_PASSWORD", "")
        self.credentials = (user, password) if user else None
        self.api = PlatformClient(api_url, api_key or os.environ.get("GRIDLOOP_API_KEY"))
        self.outbox_file = outbox
        return self.meta

    def create(self, num: int, model: str, bus: str = "", phase: int = -1, vn_kv: float = 0.4) -> list[dict]:
        if model != "Meter" or self.fleet is not None:
            raise ValueError("Meters: create Meter entities before the simulation starts")
        out = []
        for _ in range(num):
            eid = f"m{len(self.entities) + 1:05d}"
            self.entities.append({"eid": eid, "bus": str(bus), "phase": int(phase), "vn_kv": float(vn_kv)})
            out.append(entity(eid, "Meter"))
        return out

    def setup_done(self) -> None:
        """Build the meter bank (drawn from the scenario's seed as in ``gridloop run``), provision it, start the DIA."""
        ids = [e["eid"] for e in self.entities]
        n, seed = len(ids), self.s.seed
        rng = np.random.default_rng([seed, 1])
        self.phase = np.array([e["phase"] for e in self.entities], dtype=np.int64)
        self.v_base = np.array([e["vn_kv"] for e in self.entities]) * 1000.0 / np.sqrt(3.0)
        self.fleet = HomeMeterFleet(ids, np.arange(n), self.phase, np.zeros(n, dtype=bool), self.s.meters.interval,
                                    np.random.default_rng([seed, 7]), initial_wh=rng.uniform(1e5, 5e7, n))
        self._pos = {eid: i for i, eid in enumerate(ids)}
        self.vm = np.ones(n)
        self.p_w, self.q_var = np.zeros(n), np.zeros(n)
        self.p3, self.q3 = np.full((n, 3), np.nan), np.full((n, 3), np.nan)  # per phase, where a home gives it
        self.api.provision(self._devices())
        p, m = self.s.platform, self.s.meters
        outbox = None
        if m.end_to_end_delivery and m.dia_buffer_readings > 0:  # as gridloop run: kept until the platform acks
            outbox = Outbox(self.outbox_file, max_envelopes=m.dia_buffer_readings,
                            max_readings=m.dia_buffer_readings)
        self.dia = DeviceIntegrationAdapter(self.broker, self.tenant, self.dia_id, m.dia_batch,
                                            buffer_readings=m.dia_buffer_readings, credentials=self.credentials,
                                            tls=TlsFiles(p.tls_ca, p.tls_cert, p.tls_key), outbox=outbox)

    def _devices(self) -> list[dict]:
        devices = [{"id": self.dia_id, "type": DeviceType.DIA}]
        for e in self.entities:
            meta = MeterMeta(interval_s=self.s.meters.interval, bus=e["bus"] or None,
                             phase=PHASES[e["phase"]] if e["phase"] >= 0 else Phase.ALL)
            devices.append({"id": e["eid"], "type": DeviceType.ELECTRICITY_METER, "phases": 3 if e["phase"] < 0 else 1,
                            "gateway": self.dia_id, "meta": meta.model_dump(mode="json", exclude_none=True)})
        return devices

    def step(self, time: int, inputs: dict, max_advance: int) -> int:
        for eid, attrs in inputs.items():
            i = self._pos[eid]
            for attr, sources in attrs.items():
                value = float(sum(v for v in sources.values() if v is not None))
                if attr == "vm_pu":
                    self.vm[i] = value / max(1, len(sources))
                elif attr == "p_mw":
                    self.p_w[i] = value * 1e6
                elif attr == "q_mvar":
                    self.q_var[i] = value * 1e6
                elif attr in PHASE_ATTRS:
                    k = PHASE_ATTRS.index(attr)
                    (self.p3 if k < 3 else self.q3)[i, k % 3] = value
        now_ms = self.clock.now_ms(time)
        fleet = self.fleet
        if fleet.due(now_ms / 1000):
            v3 = np.repeat((self.vm * self.v_base)[:, None], 3, axis=1)
            sample = fleet.sample(self.epoch_ms + now_ms, v3, *self._per_phase())
            self.dia.publish(sample)
            self.published += len(sample.devices)
        p_w = np.where(np.isnan(self.p3).any(axis=1), self.p_w, np.nan_to_num(self.p3).sum(axis=1))
        fleet.integrate(p_w, self.clock.step_s, self.epoch_ms + now_ms)
        return time + self.clock.step_size

    def _per_phase(self) -> tuple[np.ndarray, np.ndarray]:
        """Per phase as the home gives it; else a single-phase home draws on its phase, a three-phase one a third."""
        on = np.where(self.phase[:, None] >= 0, np.eye(3)[np.maximum(self.phase, 0)], 1 / 3)
        p3, q3 = on * self.p_w[:, None], on * self.q_var[:, None]
        return np.where(np.isnan(self.p3), p3, self.p3), np.where(np.isnan(self.q3), q3, self.q3)

    def get_data(self, outputs: dict) -> dict:
        data = {}
        for eid, attrs in outputs.items():
            i = self._pos[eid]
            values = {"vm_pu": float(self.vm[i]), "p_mw": self.p_w[i] / 1e6, "q_mvar": self.q_var[i] / 1e6,
                      "v_a_v": float(self.vm[i] * self.v_base[i]), "readings": self.published}
            data[eid] = {attr: values.get(attr) for attr in attrs}
        return data

    def finalize(self) -> None:
        """Hand every reading to the broker before mosaik ends the run."""
        if self.dia is not None:
            self.dia.flush(timeout_s=60)
            self.dia.close()
        self.api.close()
