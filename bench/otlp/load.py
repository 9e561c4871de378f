"""OTLP trace ingest benchmark: spans per second per core into medic, and
memory per active (service, operation).

    python bench/otlp/load.py --medic target/release/medic [--seconds 20]

Starts medic with an `otlp` source and an `error_rate` detector over the RED
series, then:

1. throughput: client threads POST pre-encoded `ExportTraceServiceRequest`
   protobuf bodies (built with the official opentelemetry-proto Python
   classes: 500 spans each, 10 services x 10 operations, 10 % errors,
   realistic ids, times and attributes) to /v1/traces for `--seconds`.
   medic's CPU time (utime+stime from /proc) gives spans per CPU-second,
   i.e. per core;
2. memory: RSS before and after `--keys` new (service, operation) pairs
   become active (each is 2 counters + 3 quantile series and a latency
   window), divided by the number of keys.

Prints a Markdown block for bench/results/otlp.md.
"""

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def kv(k, v):
    if isinstance(v, int):
        return KeyValue(key=k, value=AnyValue(int_value=v))
    return KeyValue(key=k, value=AnyValue(string_value=v))


def body(rng, services, operations, spans, error_fraction=0.1):
    """One export: `spans` spans spread over services x operations."""
    req = ExportTraceServiceRequest()
    per_service = {}
    now = time.time_ns()
    for _ in range(spans):
        svc = rng.choice(services)
        rs = per_service.get(svc)
        if rs is None:
            rs = ResourceSpans()
            rs.resource.attributes.extend([
                kv("service.name", svc), kv("service.instance.id", f"{svc}-1"),
                kv("telemetry.sdk.language", "python"), kv("telemetry.sdk.name", "opentelemetry"),
                kv("telemetry.sdk.version", "1.45.2")])
            rs.scope_spans.append(ScopeSpans())
            rs.scope_spans[0].scope.name = "bench"
            per_service[svc] = rs
        op = rng.choice(operations)
        dur = int(rng.lognormvariate(17, 1))  # ~ 24 ms median, in ns
        failed = rng.random() < error_fraction
        s = Span(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), name=op,
                 kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=now - dur,
                 end_time_unix_nano=now)
        s.attributes.extend([kv("http.request.method", "GET"), kv("http.route", op),
                             kv("http.response.status_code", 500 if failed else 200),
                             kv("server.address", "shop.internal")])
        if failed:
            s.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="upstream 500"))
        rs.scope_spans[0].spans.append(s)
    req.resource_spans.extend(per_service.values())
    return req.SerializeToString()


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return cpu, rss * 1024


def post_loop(port, bodies, stop, counts, i):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    n = 0
    k = i
    while not stop.is_set():
        b = bodies[k % len(bodies)]
        k += 1
        conn.request("POST", "/v1/traces", b, {"Content-Type": "application/x-protobuf"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"status {r.status}")
        n += 1
    counts[i] = n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--medic", required=True)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--spans-per-request", type=int, default=500)
    p.add_argument("--keys", type=int, default=5000)
    p.add_argument("--by", default="service,operation",
                   help="the error_rate detector's groups (one machine per group)")
    a = p.parse_args()

    rng = random.Random(1)
    services = [f"svc-{i}" for i in range(10)]
    operations = [f"GET /api/v1/item/{i}" for i in range(10)]
    bodies = [body(rng, services, operations, a.spans_per_request) for _ in range(40)]

    d = tempfile.mkdtemp(prefix="medic-otlp-bench-")
    os.makedirs(os.path.join(d, "runbooks"))
    port = free_port()
    with open(os.path.join(d, "medic.yaml"), "w") as f:
        f.write(f"""listen: 127.0.0.1:{port}
state_dir: state
runbooks: runbooks
sources:
  - name: otel
    kind: otlp
    limits: {{max_series: 200000}}
detectors:
  - name: span-errors
    kind: error_rate
    errors: medic_span_errors_total
    total: medic_span_requests_total
    by: [{a.by}]
    window: 1m
    max_ratio: 0.5
    min_total: 100
    severity: warning
""")
    log = open(os.path.join(d, "medic.log"), "w")
    m = subprocess.Popen([a.medic, "run", "--config", os.path.join(d, "medic.yaml")],
                         stdout=log, stderr=log)
    try:
        for _ in range(300):
            if m.poll() is not None:
                raise SystemExit(f"medic exited; see {d}/medic.log")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").read()
                break
            except OSError:
                time.sleep(0.1)
        # Warm up (keys exist, allocator settled).
        for b in bodies[:5]:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/traces", b,
                {"Content-Type": "application/x-protobuf"})).read()
        time.sleep(2)

        cpu0, _ = proc_stat(m.pid)
        stop = threading.Event()
        counts = [0] * a.threads
        ts = [threading.Thread(target=post_loop, args=(port, bodies, stop, counts, i))
              for i in range(a.threads)]
        t0 = time.time()
        for t in ts:
            t.start()
        time.sleep(a.seconds)
        stop.set()
        for t in ts:
            t.join()
        wall = time.time() - t0
        time.sleep(1.5)  # the last flush
        cpu1, _ = proc_stat(m.pid)
        spans = sum(counts) * a.spans_per_request
        cpu = cpu1 - cpu0

        # Memory per (service, operation): many new keys, a few spans each.
        time.sleep(2)
        _, rss0 = proc_stat(m.pid)
        key_services = [f"mem-{i}" for i in range(max(1, a.keys // 100))]
        key_ops = [f"op-{j}" for j in range(100)]
        pairs = [(s, o) for s in key_services for o in key_ops]
        for i in range(0, len(pairs), 500):
            chunk = pairs[i:i + 500]
            req = ExportTraceServiceRequest()
            for s, o in chunk:
                rs = req.resource_spans.add()
                rs.resource.attributes.append(kv("service.name", s))
                ss = rs.scope_spans.add()
                for _ in range(3):
                    now = time.time_ns()
                    ss.spans.append(Span(trace_id=rng.randbytes(16), span_id=rng.randbytes(8),
                                         name=o, start_time_unix_nano=now - 5_000_000,
                                         end_time_unix_nano=now))
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/traces", req.SerializeToString(),
                {"Content-Type": "application/x-protobuf"})).read()
        time.sleep(3)  # several flushes
        _, rss1 = proc_stat(m.pid)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        active = next((l for l in metrics.splitlines() if l.startswith("medic_active_series")), "")

        print("## OTLP trace ingest\n")
        print(f"- command: `python bench/otlp/load.py --medic {a.medic} --seconds {a.seconds:g} "
              f"--threads {a.threads} --spans-per-request {a.spans_per_request} --keys {a.keys} --by {a.by}`")
        print(f"- machine: {os.cpu_count()} cores; the load generator runs on the same machine")
        print(f"- requests: {sum(counts)} x {a.spans_per_request} spans = {spans} spans in {wall:.1f} s wall "
              f"→ {spans / wall:,.0f} spans/s")
        print(f"- medic CPU: {cpu:.2f} s → **{spans / cpu:,.0f} spans per CPU-second (per core)**")
        print(f"- memory: RSS {rss0 / 2**20:.1f} MiB → {rss1 / 2**20:.1f} MiB after {len(pairs)} new "
              f"(service, operation) keys → **{(rss1 - rss0) / len(pairs):,.0f} bytes per key**")
        print(f"- {active}")
    finally:
        m.terminate()
        m.wait()


if __name__ == "__main__":
    main()
