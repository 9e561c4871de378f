"""Send spans (and optionally metrics) to medic with the real OpenTelemetry
Python SDK, as an instrumented service would.

    otlp_emit.py --protocol http --endpoint http://127.0.0.1:PORT \
        --service checkout --spans 200 --error-fraction 0.5 [--metrics]

`--protocol grpc` takes `--endpoint 127.0.0.1:PORT`. Errors alternate between
status ERROR (with http.status_code 500) and a bare
http.response.status_code 503, so both ways medic classifies a failed span
are exercised. Exits 1 when an export failed.
"""

import argparse
import os
import sys

os.environ.setdefault("OTEL_EXPORTER_OTLP_TIMEOUT", "2")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode


def exporters(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return (OTLPSpanExporter(endpoint=endpoint, insecure=True),
                OTLPMetricExporter(endpoint=endpoint, insecure=True))
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return (OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"),
            OTLPMetricExporter(endpoint=endpoint.rstrip("/") + "/v1/metrics"))


def counting(exporter, ok_value, tally, kind):
    """Wrap exporter.export to count successful and failed exports."""
    inner = exporter.export

    def export(batch, *a, **kw):
        r = inner(batch, *a, **kw)
        tally[kind, r == ok_value] = tally.get((kind, r == ok_value), 0) + 1
        return r

    exporter.export = export
    return exporter


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", choices=["http", "grpc"], default="http")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--service", default="checkout")
    p.add_argument("--operation", default="GET /cart")
    p.add_argument("--spans", type=int, default=100)
    p.add_argument("--error-fraction", type=float, default=0.0)
    p.add_argument("--metrics", action="store_true")
    a = p.parse_args()

    tally = {}
    span_exp, metric_exp = exporters(a.protocol, a.endpoint)
    resource = Resource.create({"service.name": a.service})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(counting(span_exp, SpanExportResult.SUCCESS, tally, "spans")))
    tracer = tp.get_tracer("medic-e2e")

    errors = round(a.spans * a.error_fraction)
    for i in range(a.spans):
        # Spread the errors evenly over the spans.
        failed = (i + 1) * errors // a.spans > i * errors // a.spans
        with tracer.start_as_current_span(a.operation) as s:
            if failed and i % 2 == 0:
                s.set_attribute("http.status_code", 500)
                s.set_status(Status(StatusCode.ERROR, "upstream 500"))
            elif failed:
                s.set_attribute("http.response.status_code", 503)
            else:
                s.set_attribute("http.status_code", 200)
    tp.shutdown()

    if a.metrics:
        reader = PeriodicExportingMetricReader(
            counting(metric_exp, MetricExportResult.SUCCESS, tally, "metrics"),
            export_interval_millis=60_000)
        mp = MeterProvider(resource=resource, metric_readers=[reader])
        meter = mp.get_meter("medic-e2e")
        requests = meter.create_counter("http.server.requests")
        duration = meter.create_histogram("http.server.duration", unit="ms")
        for i in range(a.spans):
            code = "500" if i < errors else "200"
            requests.add(1, {"code": code})
            duration.record(float(i % 50), {"route": "/cart"})
        mp.shutdown()

    print("exports:", {f"{k}:{'ok' if good else 'failed'}": n for (k, good), n in sorted(tally.items())})
    if any(not good for (_, good) in tally):
        sys.exit(1)


if __name__ == "__main__":
    main()
