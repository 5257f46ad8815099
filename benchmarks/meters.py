"""Meter sampling + encoding cost, and readings/s one DIA process publishes (QoS 1) against mosquitto_pub.

Run:  .venv/bin/python benchmarks/meters.py [--meters 10000] [--batch 500] [--readings 500000] [--write]
(from the repo root).  Everything runs on loopback against a Mosquitto child (gridloop.broker.EmbeddedBroker);
a mosquitto_sub subscriber checks that every message of each publishing run arrived.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridloop.broker import EmbeddedBroker  # noqa: E402
from gridloop.contract import TopicKind, topic  # noqa: E402
from gridloop.mqtt_client import connect  # noqa: E402
from gridloop.virtual_meters.accuracy import MeterClock  # noqa: E402
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter  # noqa: E402
from gridloop.virtual_meters.electricity import ElectricityMeterBank, MeterSample  # noqa: E402
from gridloop.virtual_meters.envelopes import encode_envelopes_exact, encode_finite, split_finite  # noqa: E402
from gridloop.virtual_meters.envelopes_fixed_width import encode_envelopes  # noqa: E402
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank  # noqa: E402

T0 = 1_767_225_600_000
TENANT = "bench"


def make_bank(n: int, seed: int = 1) -> tuple[ElectricityMeterBank, np.ndarray, np.ndarray]:
    """The Hyllie residential bank over 100 buses, with realistic register sizes and mixed import/export."""
    rng = np.random.default_rng(seed)
    ids = [f"hyl-m{i:05d}" for i in range(n)]
    bank = ElectricityMeterBank(ids, np.arange(n) % 100, 10.0, rng.uniform(0.0, 2.0e6, n))
    return bank, rng.uniform(395.0, 412.0, 100), rng.uniform(-3000.0, 9000.0, n)


def dia_encode(sample: MeterSample, batch: int) -> list[bytes]:
    """The reference encoding: a dict per reading, orjson per envelope (the DIA's bytes are identical to it)."""
    names = [str(k) for k in sample.quantities]  # plain str keys: orjson takes no Quantity (StrEnum) keys
    columns = [sample.quantities[n].tolist() for n in names]
    seqs = sample.seq.tolist()
    ts = sample.ts_ms
    out = []
    for lo in range(0, len(sample.devices), batch):
        hi = min(lo + batch, len(sample.devices))
        readings = [
            {"dev": sample.devices[i], "ts": ts, "seq": seqs[i],
             "q": {n: col[i] for n, col in zip(names, columns, strict=True)}}
            for i in range(lo, hi)
        ]
        out.append(orjson.dumps({"v": 1, "readings": readings}))
    return out


def per_reading_us(fn: Callable[[], object], readings: int, repeat: int = 15) -> float:
    """Best-of-``repeat`` cost of ``fn`` per reading, microseconds."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / readings * 1e6


def part_a(n: int, batch: int) -> list[tuple[str, float]]:
    """Sampling and encoding cost per reading, in-process (no broker)."""
    bank, v, p = make_bank(n)
    state = {"k": 0}

    def sample() -> MeterSample:
        state["k"] += 1
        s = bank.sample(T0 + 10_000 * state["k"], v, p)
        bank.integrate(p, 10.0)
        return s

    s = sample()
    assert dia_encode(s, batch) == encode_envelopes_exact(s, batch)  # same bytes
    same = [orjson.loads(e)["readings"] for e in encode_envelopes(s, batch)]
    assert same == [orjson.loads(e)["readings"] for e in dia_encode(s, batch)]  # same readings
    rng = np.random.default_rng(2)
    subs = SubstationMeterBank(bank.ids, 10.0, rng, clock=MeterClock.draw(n, rng, sync_ms=T0))
    v3, p3, q3 = np.full((n, 3), 231.0), np.tile(p[:, None] / 3, 3), np.tile(p[:, None] / 10, 3)
    return [
        ("ElectricityMeterBank.sample + integrate", per_reading_us(sample, n)),
        ("DIA encoding (dict per reading + orjson)", per_reading_us(lambda: dia_encode(s, batch), n)),
        ("encode_envelopes_exact (column-wise orjson, same bytes)",
         per_reading_us(lambda: encode_envelopes_exact(s, batch), n)),
        ("encode_envelopes (fixed-width numpy rows)", per_reading_us(lambda: encode_envelopes(s, batch), n)),
        ("sample + DIA encoding", per_reading_us(lambda: dia_encode(sample(), batch), n)),
        ("sample + encode_envelopes", per_reading_us(lambda: encode_envelopes(sample(), batch), n)),
        ("SubstationMeterBank.sample (23 quantities, clocks)",
         per_reading_us(lambda: subs.sample(T0, v3, p3, q3), n)),
        ("SubstationMeterBank.sample + encode_envelopes",
         per_reading_us(lambda: encode_envelopes(subs.sample(T0, v3, p3, q3), batch), n)),
    ]


def dia_envelope_ms(n: int, batch: int) -> list[tuple[str, float]]:
    """The DIA's own encoding (split_finite + encode_finite, as in DeviceIntegrationAdapter.publish), ms per envelope.

    For one sample of ``batch`` meters and for one of ``n`` meters (``n / batch`` envelopes), of the residential
    bank (9 quantities, one ts) and of the substation bank (23 quantities, each meter's clock time).
    """
    def dia_path(s: MeterSample) -> list[bytes]:
        return [env for g in split_finite(s) for env in encode_finite(g, batch)]

    rows = []
    for m in sorted({batch, n}):
        bank, v, p = make_bank(m)
        bank.integrate(p, 3600.0)
        s = bank.sample(T0, v, p)
        rng = np.random.default_rng(2)
        subs = SubstationMeterBank(bank.ids, 10.0, rng, clock=MeterClock.draw(m, rng, sync_ms=T0))
        ss = subs.sample(T0, np.full((m, 3), 231.0), np.tile(p[:, None] / 3, 3), np.tile(p[:, None] / 10, 3))
        envelopes = -(-m // batch)
        for label, sample in (("ElectricityMeterBank", s), ("SubstationMeterBank", ss)):
            assert dia_path(sample) == encode_envelopes_exact(sample, batch)
            ms = per_reading_us(lambda sample=sample: dia_path(sample), envelopes, repeat=30) / 1e3
            rows.append((f"{label}, {m} meters ({envelopes} envelopes)", ms))
        if m == batch:  # the floor of exact bytes: orjson printing the substation's float columns, nothing else
            columns = [np.ascontiguousarray(c) for c in ss.quantities.values()]
            ms = per_reading_us(lambda columns=columns: [orjson.dumps(c, option=orjson.OPT_SERIALIZE_NUMPY)
                                                         for c in columns], 1, repeat=30) / 1e3
            rows.append((f"SubstationMeterBank, {m} meters: orjson printing its {len(columns)} columns alone", ms))
    return rows


class Receiver:
    """mosquitto_sub at QoS 1 that exits after ``count`` messages: proves every message reached a subscriber."""

    def __init__(self, broker: EmbeddedBroker, topic_filter: str, count: int) -> None:
        self.count = count
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-t", topic_filter, "-q", "1",
             "-C", str(count), "-F", "%l"],  # one line per message: its payload length
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # let it subscribe before anything is published

    def received(self, timeout_s: float = 60.0) -> tuple[int, int]:
        """(messages, payload bytes) the subscriber got."""
        try:
            out, _ = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        sizes = [int(x) for x in out.split()]
        return len(sizes), sum(sizes)


def part_b_dia(broker: EmbeddedBroker, n: int, batch: int, rounds: int, verify: bool) -> dict:
    """The unmodified DIA: sample, publish, integrate per round; readings/s counted by PUBACKs after flush()."""
    bank, v, p = make_bank(n)
    dia_id = "dia-bench"
    recv = Receiver(broker, topic(TENANT, TopicKind.TELEMETRY, dia_id), rounds * -(-n // batch)) if verify else None
    dia = DeviceIntegrationAdapter(broker.address, TENANT, dia_id, batch=batch)
    t = time.perf_counter()
    for k in range(rounds):
        dia.publish(bank.sample(T0 + 10_000 * k, v, p))
        bank.integrate(p, 10.0)
    flushed = dia.flush(120.0)
    wall = time.perf_counter() - t
    acked = dia.readings_acknowledged
    dia.close()
    got = recv.received() if recv else (None, None)
    return {"readings": acked, "wall_s": wall, "rate": acked / wall, "flushed": flushed,
            "messages_received": got[0], "bytes_received": got[1]}


def part_b_fast(broker: EmbeddedBroker, n: int, batch: int, rounds: int, verify: bool,
                preencoded: bool = False) -> dict:
    """What a DIA using encode_envelopes would do: the same paho client settings, PUBACKs counted the same way.

    ``preencoded``: all envelopes are built before the clock starts, which isolates paho's own publishing cost.
    """
    bank, v, p = make_bank(n)
    dev = "dia-pre" if preencoded else "dia-fast"
    ready = [encode_envelopes(bank.sample(T0 + 10_000 * k, v, p), batch) for k in range(rounds)] if preencoded else []
    recv = Receiver(broker, topic(TENANT, TopicKind.TELEMETRY, dev), rounds * -(-n // batch)) if verify else None
    acked: deque[int] = deque()
    client = connect(broker.address, f"gridloop-{TENANT}-{dev}", clean_start=False, session_expiry_s=3600)
    client.on_publish = lambda c, u, mid, rc, props: acked.append(mid)
    pending: dict[int, int] = {}
    tpc = topic(TENANT, TopicKind.TELEMETRY, dev)
    done = 0
    t = time.perf_counter()
    for k in range(rounds):
        envelopes = ready[k] if preencoded else encode_envelopes(bank.sample(T0 + 10_000 * k, v, p), batch)
        for lo, env in zip(range(0, n, batch), envelopes, strict=True):
            pending[client.publish(tpc, env, qos=1).mid] = min(batch, n - lo)
        bank.integrate(p, 10.0)
    deadline = time.monotonic() + 120.0
    while pending and time.monotonic() < deadline:
        while acked:
            done += pending.pop(acked.popleft(), 0)
        time.sleep(0.002)
    wall = time.perf_counter() - t
    client.disconnect()
    client.loop_stop()
    got = recv.received() if recv else (None, None)
    return {"readings": done, "wall_s": wall, "rate": done / wall, "flushed": not pending,
            "messages_received": got[0], "bytes_received": got[1]}


def part_c_mosquitto_pub(broker: EmbeddedBroker, n: int, batch: int, rounds: int, verify: bool) -> dict:
    """The C reference: mosquitto_pub -q 1 -l fed the DIA's envelopes (one per line), timed as a whole process."""
    bank, v, p = make_bank(n)
    lines = []
    for k in range(rounds):
        lines += dia_encode(bank.sample(T0 + 10_000 * k, v, p), batch)
        bank.integrate(p, 10.0)
    messages = len(lines)
    dev = "mosquitto-pub"
    recv = Receiver(broker, topic(TENANT, TopicKind.TELEMETRY, dev), messages) if verify else None
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as fh:
        fh.write(b"\n".join(lines) + b"\n")
        path = fh.name
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", topic(TENANT, TopicKind.TELEMETRY, dev),
           "-q", "1", "-l", "-i", f"gridloop-{TENANT}-{dev}"]
    try:
        with open(path, "rb") as stdin:
            t = time.perf_counter()
            proc = subprocess.run(cmd, stdin=stdin, capture_output=True, timeout=300)
            wall = time.perf_counter() - t
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise RuntimeError(f"mosquitto_pub failed: {proc.stderr.decode(errors='replace')}")
    readings = n * rounds
    got = recv.received() if recv else (None, None)
    return {"readings": readings, "wall_s": wall, "rate": readings / wall, "flushed": True,
            "messages_received": got[0], "bytes_received": got[1], "cmd": shlex.join(cmd) + " < envelopes.jsonl"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meters", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--readings", type=int, default=500_000, help="per publishing run (whole rounds of --meters)")
    ap.add_argument("--repeat", type=int, default=5, help="publishing runs per path; the best is reported")
    ap.add_argument("--no-verify", action="store_true", help="no mosquitto_sub receipt check")
    ap.add_argument("--write", action="store_true", help="write benchmarks/RESULTS_meters.md")
    args = ap.parse_args()
    n, batch = args.meters, args.batch
    rounds = max(1, min(args.readings // n, 1000))  # bounded
    verify = not args.no_verify

    a = part_a(n, batch)
    print(f"(a) sampling + encoding, {n} meters, batches of {batch} (best of 15, µs per reading)")
    for name, us in a:
        print(f"  {name:55s} {us:7.3f} µs  ({1e6 / us:,.0f} readings/s)")
    envelope_ms = dia_envelope_ms(n, batch)
    print(f"(a2) DIA envelope encoding (split_finite + encode_finite), best of 30, ms per envelope of {batch} readings")
    for name, ms in envelope_ms:
        print(f"  {name:55s} {ms:7.3f} ms")

    bank, v, p = make_bank(n)
    size = len(dia_encode(bank.sample(T0, v, p), batch)[0])
    size_fast = len(encode_envelopes(bank.sample(T0, v, p), batch)[0])
    runs: dict[str, list[dict]] = {"dia": [], "fast": [], "pre": [], "c": []}
    with EmbeddedBroker() as broker:
        for _ in range(args.repeat):  # interleaved, so drifting machine load hits every path alike
            runs["dia"].append(part_b_dia(broker, n, batch, rounds, verify))
            runs["fast"].append(part_b_fast(broker, n, batch, rounds, verify))
            runs["pre"].append(part_b_fast(broker, n, batch, rounds, verify, preencoded=True))
            runs["c"].append(part_c_mosquitto_pub(broker, n, batch, rounds, verify))
    best = {k: max(v, key=lambda r: r["rate"]) for k, v in runs.items()}
    labels = {"dia": "DeviceIntegrationAdapter.publish (unmodified)",
              "fast": "paho client + encode_envelopes (suggested DIA path)",
              "pre": "paho client, envelopes encoded beforehand (paho alone)",
              "c": "mosquitto_pub -q 1 -l (C reference)"}
    total_msgs = rounds * -(-n // batch)
    print(f"\n(b, c) QoS 1 to Mosquitto on loopback: {n * rounds:,} readings = {total_msgs} messages of ~{size:,} B "
          f"(encode_envelopes: ~{size_fast:,} B) per run; best of {args.repeat}")
    for k, label in labels.items():
        r = best[k]
        rates = ", ".join(f"{x['rate']:,.0f}" for x in runs[k])
        print(f"  {label:52s} {r['rate']:>10,.0f} readings/s  ({r['wall_s']:.2f} s; runs: {rates}; "
              f"ratio to C {r['rate'] / best['c']['rate']:.2f}; median {median(runs[k]):,.0f}, "
              f"ratio {median(runs[k]) / median(runs['c']):.2f}; received {r['messages_received']}/{total_msgs} msgs)")
    if args.write:
        write_results(args, a, envelope_ms, best, runs, labels, n, batch, rounds, total_msgs, size, size_fast)


NOTES = [
    "## Reading the numbers",
    "",
    "- One unmodified DIA process sustains > 100,000 readings/s (target) with every message PUBACKed and received.",
    "- The DIA encodes with `encode_finite` (`gridloop.virtual_meters.envelopes`, after one `split_finite`): a row "
    "template of constant text with orjson-printed columns spliced in, byte-identical to orjson on a dict per "
    "reading (the 'dict per reading + orjson' row, kept as the reference); (a2) gives its cost per envelope. "
    "`encode_envelopes` (`gridloop.virtual_meters.envelopes_fixed_width`) carries the same readings in padded "
    "fixed-width rows (not the same bytes) and is cheaper for large samples only.",
    '- The substation envelope (22 float columns, 500 readings) is not at the 0.2 ms target: orjson print'
    'ing its columns alone costs about 0.2 ms (the row above it), and splitting the printed text into val'
    'ues and joining them with the names (some 24,000 pieces per envelope) costs as much again. Byte-identi'
    'cal output below 0.2 ms needs an encoder that writes the rows natively (no Python object per value);'
    ' numpy byte gathering of the ~420 kB envelope alone costs about as much as the target.',
    "- paho on its own keeps pace with mosquitto_pub; what remains between the encoded paths and the C client is "
    "encoding and publishing running one after the other in one interpreter (the GIL is shared with paho's network "
    "thread). On this 2-CPU machine the broker and the verifying subscriber compete for the same cores, so all "
    "rates, the C client's included, are lower bounds and vary run to run (all runs are listed).",
]


def median(runs: list[dict]) -> float:
    """Median readings/s of a path's runs."""
    return float(np.median([r["rate"] for r in runs]))


def write_results(args: argparse.Namespace, a: list[tuple[str, float]], envelope_ms: list[tuple[str, float]],
                  best: dict, runs: dict, labels: dict,
                  n: int, batch: int, rounds: int, total_msgs: int, size: int, size_fast: int) -> None:
    """Record the run in benchmarks/RESULTS_meters.md."""
    mosq = subprocess.run(["mosquitto_pub", "--help"], capture_output=True, text=True).stdout.splitlines()[1]
    mosq = mosq.strip().rstrip(".")
    argv = " ".join(shlex.quote(x) for x in sys.argv[1:])
    lines = [
        "# Meter sampling, encoding and DIA publishing benchmark",
        "",
        f"Command (from repo root): `.venv/bin/python benchmarks/meters.py {argv}`",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, {os.cpu_count()} CPUs "
        f"(shared machine: numbers are noisy), Python {platform.python_version()}, numpy {np.__version__}, "
        f"orjson {metadata.version('orjson')}, paho-mqtt {metadata.version('paho-mqtt')}, {mosq.strip()}. "
        "Broker: gridloop.broker.EmbeddedBroker (Mosquitto child on 127.0.0.1, persistence off). "
        "Publisher, broker and the verifying mosquitto_sub share the same CPUs.",
        "",
        f"## (a) sampling + encoding cost: {n:,} meters, envelopes of {batch} readings (best of 15)",
        "",
        "| step | µs / reading | readings/s (one core) |",
        "|---|---:|---:|",
        *[f"| {name} | {us:.3f} | {1e6 / us:,.0f} |" for name, us in a],
        "",
        f"DIA envelope encoding (split_finite + encode_finite, as in `DeviceIntegrationAdapter.publish`), "
        f"best of 30, per envelope of {batch} readings:",
        "",
        "| sample | ms / envelope |",
        "|---|---:|",
        *[f"| {name} | {ms:.3f} |" for name, ms in envelope_ms],
        "",
        "encode_envelopes_exact produces the DIA's bytes; encode_envelopes the same readings (asserted here and in "
        f"the tests) in fixed-width rows padded with JSON whitespace (~{size_fast:,} B vs ~{size:,} B per envelope).",
        "",
        f"## (b, c) QoS 1 publishing to Mosquitto on loopback: {n * rounds:,} readings per run = {total_msgs} "
        f"messages of ~{size:,} B (DIA, mosquitto_pub) / ~{size_fast:,} B (encode_envelopes); "
        f"best of {args.repeat} interleaved runs",
        "",
        "Readings are counted when PUBACKed (the DIA's `flush()`); mosquitto_pub is timed as a whole process "
        "(it exits after the last PUBACK). A mosquitto_sub at QoS 1 checked receipt of every message.",
        "",
        "| publisher | best readings/s | wall s | ratio to C (best) | median readings/s | ratio to C (median) "
        "| all runs (readings/s) | messages received |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for k, label in labels.items():
        r = best[k]
        rates = ", ".join(f"{x['rate']:,.0f}" for x in runs[k])
        med = median(runs[k])
        lines.append(f"| {label} | {r['rate']:,.0f} | {r['wall_s']:.2f} | {r['rate'] / best['c']['rate']:.2f} | "
                     f"{med:,.0f} | {med / median(runs['c']):.2f} | {rates} | "
                     f"{r['messages_received']}/{total_msgs} |")
    lines += ["", f"C reference command: `{best['c']['cmd']}`", "", *NOTES, ""]
    out = ROOT / "benchmarks" / "RESULTS_meters.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
