"""Telemetry envelopes: the DIA's column-wise encoder gives the bytes of orjson on a dict per reading; the
fixed-width encoder the same readings."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import orjson
import pytest

from gridloop.contract import NAME, BrokerAddress, Quantity, Reading, TopicKind, topic
from gridloop.contract.delivery import with_id
from gridloop.contract.telemetry import decode_readings
from gridloop.virtual_meters.accuracy import MeterClock
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.electricity import ElectricityMeterBank, MeterSample
from gridloop.virtual_meters.envelopes import (
    encode_envelopes_exact,
    encode_finite,
    join_samples,
    pack_envelopes,
    split_finite,
)
from gridloop.virtual_meters.envelopes_fixed_width import encode_envelopes
from gridloop.virtual_meters.meter_types.blink import BlinkDetector
from gridloop.virtual_meters.meter_types.home_1hz import HomeMeter1Hz
from gridloop.virtual_meters.meter_types.single_phase import SinglePhaseMeterBank
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank
from gridloop.virtual_meters.utility_meters import GasMeters, HeatMeters, WaterMeters

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def ids(n: int, prefix: str = "m") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def reference_envelopes(sample: MeterSample, batch: int) -> list[bytes]:
    """What the DIA sent before the column-wise encoders: orjson on a dict per reading, NaN values left out."""
    meter_ts = getattr(sample, "meter_ts_ms", None)
    ts = [sample.ts_ms] * len(sample.devices) if meter_ts is None else np.asarray(meter_ts).tolist()
    cols = {str(k): v.tolist() for k, v in sample.quantities.items()}  # plain str keys for orjson
    readings = [{"dev": d, "ts": t, "seq": sq, "q": {k: c[i] for k, c in cols.items() if c[i] == c[i]}}
                for i, (d, t, sq) in enumerate(zip(sample.devices, ts, sample.seq.tolist(), strict=True))]
    groups: dict[tuple[str, ...], list[dict]] = {}
    for r in readings:  # grouped by the set of quantities, like split_finite (whose group order may differ)
        groups.setdefault(tuple(r["q"]), []).append(r)
    return [orjson.dumps({"v": 1, "readings": g[lo:lo + batch]}) for g in groups.values()
            for lo in range(0, len(g), batch)]


def samples() -> dict[str, MeterSample]:
    """One sample of every meter type, with clocks where the meters have them."""
    rng = np.random.default_rng(5)
    n = 1234
    elec = ElectricityMeterBank(ids(n), np.arange(n) % 40, 10.0, rng.uniform(0.0, 2.0e6, n))
    p = rng.uniform(-3000.0, 9000.0, n)
    elec.integrate(p, 3600.0)
    subs = SubstationMeterBank(ids(n, "s"), 10.0, rng, clock=MeterClock.draw(n, rng, sync_ms=T0))
    p3, q3 = rng.uniform(-3000, 9000, (n, 3)), rng.uniform(-900, 900, (n, 3))
    subs.integrate(p3, q3, 3600.0)
    single = SinglePhaseMeterBank(ids(n, "t"), rng.integers(0, 3, n), 10.0, rng)
    single.integrate(p, 3600.0)
    hz = HomeMeter1Hz(ids(7, "h"), rng, phase=1, clock=MeterClock.draw(7, rng, sync_ms=T0))
    blink = BlinkDetector(ids(30, "b"))
    blink.step(T0, rng.uniform(0, 9000, 30), 600.0)
    seq = rng.integers(1, 10**6, 50)  # meters that did not all sample equally often
    return {
        "electricity": elec.sample(T0, rng.uniform(395.0, 412.0, 40), p),
        "substation": subs.sample(T0, rng.uniform(220, 240, (n, 3)), p3, q3, 50.0),
        "single_phase": single.sample(T0, rng.uniform(220, 240, n), p, 0.1 * p),
        "home_1hz": hz.sample_window(T0, rng.uniform(220, 240, (7, 3)), rng.uniform(0, 5000, (7, 3)))[-1],
        "blink": blink.sample(T0 + 600_000),
        # (float32 columns are printed as float32 by both encoders, unlike a dict of Python floats: left out)
        "mixed": MeterSample(T0, ids(50), seq, {"a.x": rng.standard_normal(50) * 1e9, "a.i": seq * -7,
                                                "a.z": -np.zeros(50), "a.big": np.full(50, 1e300)}),
    }


@pytest.mark.parametrize("kind", list(samples()))
@pytest.mark.parametrize("batch", [1, 7, 500])
def test_dia_envelopes_are_byte_identical_to_orjson_on_a_dict_per_reading(kind: str, batch: int) -> None:
    sample = samples()[kind]
    expected = sorted(reference_envelopes(sample, batch))
    got = encode_envelopes_exact(sample, batch)
    assert sorted(got) == expected
    assert [env for g in split_finite(sample) for env in encode_finite(g, batch)] == got  # the DIA's path
    assert encode_envelopes_exact(sample, batch) == got  # again, from cached device pieces


def test_the_dia_publishes_exactly_those_bytes(broker_uri: str) -> None:
    sample = samples()["substation"]
    dia = DeviceIntegrationAdapter(BrokerAddress.parse(broker_uri), "envtest", "dia-env", batch=500,
                                   device_prefix="x-")
    sent: list[tuple[str, bytes]] = []
    publish = dia._client.publish
    dia._client.publish = lambda tpc, payload, qos=0, **kw: (sent.append((tpc, payload)), publish(tpc, payload, qos))[1]
    try:
        dia.publish(sample)
        assert dia.flush(10.0)
    finally:
        dia.close()
    telemetry = [p for tpc, p in sent if tpc == topic("envtest", TopicKind.TELEMETRY, "dia-env")]
    reference = reference_envelopes(sample.renamed(["x-" + d for d in sample.devices]), 500)
    assert sorted(readings_text(telemetry)) == sorted(readings_text(reference))  # the same readings, same bytes
    assert all(len(orjson.loads(p)["readings"]) <= 500 for p in telemetry) and len(telemetry) <= len(reference)


def test_a_lingering_dia_fills_envelopes_across_calls_and_sends_the_rest_on_flush(broker_uri: str) -> None:
    home = samples()["single_phase"]
    calls = [home.subset(np.arange(k * 200, (k + 1) * 200)) for k in range(4)]  # 200 readings each
    dia = DeviceIntegrationAdapter(BrokerAddress.parse(broker_uri), "envtest", "dia-linger", batch=500,
                                   linger_s=60.0)
    sent: list[bytes] = []
    publish = dia._client.publish
    dia._client.publish = lambda tpc, payload, qos=0, **kw: (sent.append(payload), publish(tpc, payload, qos))[1]
    sizes = lambda: [len(orjson.loads(p)["readings"]) for p in sent]  # noqa: E731
    try:
        dia.publish(calls[0])
        dia.publish(calls[1])
        assert sent == [] and dia.readings_offered == 400  # waiting for a batch of readings
        dia.publish(calls[2])  # 600 waiting: encoded together, as few envelopes of at most 500 as the groups allow
        assert sum(sizes()) == 600 and max(sizes()) <= 500 and len(sent) == 2
        dia.publish(calls[3])
        assert sum(sizes()) == 600  # lingers
        assert dia.flush(10.0)  # what lingers goes out, and is acknowledged
    finally:
        dia._client.publish = publish
        dia.close()
    assert sum(sizes()) == 800 and dia.readings_acknowledged == 800
    expected = [e for c in calls for e in reference_envelopes(c, 500)]
    assert sorted(readings_text(sent)) == sorted(readings_text(expected))  # every reading once, same bytes


def test_samples_joined_across_steps_encode_to_the_same_readings() -> None:
    subs, home = samples()["substation"], samples()["single_phase"]  # meters' own clocks; one ts per sample
    later = dataclasses.replace(home, ts_ms=home.ts_ms + 60_000, seq=home.seq + 1)
    parts = [home.subset(np.arange(300)), subs.subset(np.arange(50)), later.subset(np.arange(300)),
             subs.subset(np.arange(50, 90))]
    joined = join_samples(parts)
    assert [len(s.devices) for s in joined] == [600, 90]  # one per kind, in order of first appearance
    apart = [e for s in parts for g in split_finite(s) for e in encode_finite(g, 500)]
    together = [e for s in joined for g in split_finite(s) for e in encode_finite(g, 500)]
    assert sorted(readings_text(together)) == sorted(readings_text(apart)) and len(together) < len(apart)
    assert join_samples(parts[:1]) == parts[:1]  # one sample of a kind: itself


def readings_text(envelopes: list[bytes]) -> list[bytes]:
    return [orjson.dumps(r) for p in envelopes for r in orjson.loads(p)["readings"]]


def test_a_steps_small_envelopes_are_packed_into_one_as_orjson_prints_it() -> None:
    home, subs = samples()["single_phase"].subset(np.arange(40)), samples()["substation"].subset(np.arange(1))

    def encoded(batch: int) -> list[tuple[bytes, int]]:  # as the DIA encodes a step's samples
        return [(p, len(orjson.loads(p)["readings"])) for s in (home, subs) for g in split_finite(s)
                for p in encode_finite(g, batch)]

    small = encoded(500)
    assert len(small) >= 3  # a group per phase, and the substation meter's reading
    (packed, n), = pack_envelopes(small, 500)
    assert n == 41 and packed == orjson.dumps({"v": 1, "readings": readings_list(small)})
    smaller = pack_envelopes(encoded(20), 20)
    assert all(m <= 20 for _, m in smaller) and sum(m for _, m in smaller) == 41
    assert [m for _, m in smaller] == [len(orjson.loads(p)["readings"]) for p, _ in smaller]
    assert readings_list(smaller) == readings_list(small)  # the same readings in the same order
    with pytest.raises(ValueError):
        pack_envelopes([(b'{"v":1,"events":[]}', 0)])


def readings_list(envelopes: list[tuple[bytes, int]]) -> list[dict]:
    return [r for p, _ in envelopes for r in orjson.loads(p)["readings"]]


def utility_samples() -> dict[str, MeterSample]:
    """Heat, water and gas meters' readings as the engine hands them to the DIA (values rounded to 6 decimals)."""
    rng = np.random.default_rng(6)
    out = {}
    heat = HeatMeters(9, 60_000.0, rng).step(300.0, rng.uniform(0, 50_000, 9))
    water, gas = WaterMeters(11, rng).step(900.0), GasMeters(4).step(60.0, np.full(4, 9e3))
    for kind, readings in (("heat", heat), ("water", water), ("gas", gas)):
        n = len(next(iter(readings.values())))
        out[kind] = MeterSample(T0, ids(n, kind[0]), np.full(n, 3),
                                {q: np.round(np.asarray(v, dtype=float), 6) for q, v in readings.items()})
    return out


@pytest.mark.parametrize("kind", [k for k in samples() if k != "mixed"] + list(utility_samples()))
def test_column_wise_envelopes_decode_and_validate_with_the_contract(kind: str) -> None:
    sample = {**samples(), **utility_samples()}[kind]
    assert all(isinstance(q, Quantity) for q in sample.quantities)  # meters name their quantities by the enum
    expected = sorted((r["dev"], r["ts"], r["seq"], r["q"]) for env in reference_envelopes(sample, 500)
                      for r in orjson.loads(env)["readings"])
    for encode in (encode_envelopes_exact, encode_envelopes):
        decoded = [decode_readings(env) for env in encode(sample, 500)]
        assert all(not d.reasons and d.positions is None for d in decoded)  # every reading valid
        readings = [r for d in decoded for r in d.readings]
        assert all(isinstance(r, Reading) for r in readings)
        assert sorted((r.dev, r.ts, r.seq, r.q) for r in readings) == expected
        numbered = decode_readings(with_id(encode(sample, 500)[0], 7))  # the outbox numbers them without re-encoding
        assert numbered.envelope_id == 7 and numbered.readings == decoded[0].readings


def test_fast_encodings_match_the_dia_envelope() -> None:
    rng = np.random.default_rng(2)
    n = 1234
    bank = SubstationMeterBank(ids(n), 10.0, rng, clock=MeterClock.draw(n, rng, sync_ms=T0))
    p, q = rng.uniform(-3000, 9000, (n, 3)), rng.uniform(-900, 900, (n, 3))
    bank.integrate(p, q, 3600.0)
    s = bank.sample(T0, np.full((n, 3), 231.0), p, q)
    exact = encode_envelopes_exact(s, 500)
    fast = encode_envelopes(s, 500)
    assert [len(orjson.loads(e)["readings"]) for e in exact] == [500, 500, 234]
    # the readings the DIA builds with a dict per reading and orjson, but with each meter's own clock time
    cols = {str(k): v.tolist() for k, v in s.quantities.items()}
    expected = [{"dev": d, "ts": t, "seq": sq, "q": {k: cols[k][i] for k in cols}}
                for i, (d, t, sq) in enumerate(zip(s.devices, s.meter_ts_ms.tolist(), s.seq.tolist(), strict=True))]
    assert exact[0] == orjson.dumps({"v": 1, "readings": expected[:500]})  # byte-identical
    assert [r for e in exact for r in orjson.loads(e)["readings"]] == expected
    assert [r for e in fast for r in json.loads(e)["readings"]] == expected  # same values, padded layout
    assert [r for e in fast for r in orjson.loads(e)["readings"]] == expected
    assert sum(map(len, fast)) < 1.1 * sum(map(len, exact))
    # a plain MeterSample uses its one ts; names JSON would escape fall back to orjson
    plain = MeterSample(T0, ['we"ird', "ok"], np.array([1, 2]), {"x": np.array([1.5, 2.0])})
    for encode in (encode_envelopes, encode_envelopes_exact):
        got = orjson.loads(encode(plain, 10)[0])["readings"]
        assert got == [{"dev": 'we"ird', "ts": T0, "seq": 1, "q": {"x": 1.5}},
                       {"dev": "ok", "ts": T0, "seq": 2, "q": {"x": 2.0}}]
    assert all(NAME.match(d) for d in s.devices)


def test_fixed_width_numbers_parse_back_to_the_same_floats() -> None:
    rng = np.random.default_rng(13)
    n = 2000
    raw = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 9, n)
    columns = {
        "a.d1": np.round(raw, 1), "a.d3": np.round(raw, 3), "a.d6": np.round(raw / 1e3, 6),
        "a.zero": np.zeros(n), "a.negzero": -np.zeros(n), "a.raw": raw,  # raw: no short decimals -> orjson
        "a.big": np.full(n, 1e300), "a.mixed": np.where(rng.random(n) < 0.5, 0.1 + 0.2, 5.0),
        "a.int": rng.integers(-10**12, 10**12, n), "a.f32": rng.standard_normal(n).astype(np.float32),
        "a.neg": -np.round(rng.uniform(0, 1e6, n), 2), "a.pow10": np.round(10.0 ** rng.integers(0, 12, n), 1),
    }
    devs = [f"d{'x' * int(k)}{i}" for i, k in enumerate(rng.integers(0, 20, n))]  # ids of varying length
    s = MeterSample(T0, devs, np.arange(n, dtype=np.int64), columns)
    fast = [r for e in encode_envelopes(s, 300) for r in json.loads(e)["readings"]]
    exact = [r for e in encode_envelopes_exact(s, 300) for r in json.loads(e)["readings"]]
    assert fast == exact
    assert [r["dev"] for r in fast] == devs
    assert all(r["q"]["a.negzero"] == 0.0 for r in fast)
    again = [r for e in encode_envelopes(s, 300) for r in json.loads(e)["readings"]]  # cached id columns
    assert again == fast
@pytest.mark.parametrize("n", [0, 1, 2])
def test_encoding_edge_sizes(n: int) -> None:
    for quantities in ({"electricity.frequency": np.full(n, 50.0)}, {}):
        s = MeterSample(T0, ids(n), np.ones(n, dtype=np.int64), quantities)
        for encode in (encode_envelopes, encode_envelopes_exact):
            readings = [r for e in encode(s, 1) for r in orjson.loads(e)["readings"]]
            assert readings == [{"dev": d, "ts": T0, "seq": 1, "q": {k: 50.0 for k in quantities}} for d in ids(n)]
