"""OpenTelemetry's official Python SDK exporting logs to Weir over OTLP, for
Weir's end-to-end tests. Prints one JSON line with each export's result.

usage: otlp_client.py sdk grpc|http ENDPOINT COUNT
       otlp_client.py json URL          (hand-written OTLP/JSON, gzip)
"""

import gzip
import json
import sys
import urllib.error
import urllib.request

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource


def cmd_sdk(transport, endpoint, count):
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        exporter = OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=20)
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        exporter = OTLPLogExporter(endpoint=endpoint, timeout=20, compression=Compression.Gzip)

    results = []
    export = exporter.export

    def recording(batch):
        result = export(batch)
        results.append(result.name)
        return result

    exporter.export = recording
    provider = LoggerProvider(resource=Resource.create({"service.name": "shop", "deployment.environment": "test"}))
    # Synchronous: each emit is one export, so each result is known here.
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("checkout", "1.2.3")
    for i in range(int(count)):
        logger.emit(
            timestamp=1_764_000_000_000_000_000 + i,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=f"payment {i} slow",
            attributes={"i": i, "transport": transport, "ratio": 0.5, "tags": ["a", "b"]},
            event_name="payment.slow",
        )
    provider.shutdown()
    print(json.dumps({"results": results}))


def cmd_json(url):
    """OTLP/JSON as the spec writes it: camelCase keys, int64 as strings,
    hex ids; one record with a trace id of the wrong length."""
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-client"}}]},
                "scopeLogs": [
                    {
                        "scope": {"name": "handwritten"},
                        "logRecords": [
                            {
                                "timeUnixNano": "1764000000000000001",
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "body": {"kvlistValue": {"values": [{"key": "user", "value": {"stringValue": "ana"}}]}},
                                "attributes": [{"key": "n", "value": {"intValue": "42"}}],
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                            },
                            {"timeUnixNano": "1764000000000000002", "body": {"stringValue": "bad ids"}, "traceId": "abcd"},
                        ],
                    }
                ],
            }
        ]
    }
    request = urllib.request.Request(
        url,
        data=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            print(json.dumps({"status": response.status, "body": json.loads(response.read())}))
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code, "body": e.read().decode()}))


def main():
    command, *args = sys.argv[1:]
    {"sdk": cmd_sdk, "json": cmd_json}[command](*args)


if __name__ == "__main__":
    main()
