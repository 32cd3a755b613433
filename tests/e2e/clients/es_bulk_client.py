"""Two real Elasticsearch-API clients against Weir's `_bulk`, unchanged.

`elasticsearch` is Elastic's official Python client, `opensearch-py`
OpenSearch's; each is driven through its own bulk helpers. Nothing here
shares code with Weir. Each command prints one JSON line with what it saw.

usage: es_bulk_client.py CLIENT COMMAND URL [ARGS...]
  CLIENT   elasticsearch | opensearch
  COMMAND  startup          what shippers do on connect: info, license,
                            templates, ILM, ingest pipelines
           actions          index, create, update (doc, doc_as_upsert) and
                            delete, with routing and pipeline, gzip,
                            refresh and filter_path
           retry N          N documents with ids through streaming_bulk
                            with retries on 429; counts what was sent
"""

import json
import sys

CLIENT, COMMAND, URL = sys.argv[1], sys.argv[2], sys.argv[3]
TOKEN = "s3cret"


def connect():
    if CLIENT == "elasticsearch":
        from elasticsearch import Elasticsearch, helpers

        client = Elasticsearch(URL, bearer_auth=TOKEN, request_timeout=30, http_compress=True)
        return client, helpers
    from opensearchpy import OpenSearch, helpers

    # Basic auth with the token as password, as Weir's README allows.
    client = OpenSearch([URL], http_auth=("weir", TOKEN), timeout=30, http_compress=True)
    return client, helpers


def body(response):
    """The decoded body: elasticsearch 8 wraps it, opensearch-py does not."""
    return getattr(response, "body", response)


def startup(client):
    info = body(client.info())
    seen = {"version": info["version"]["number"]}
    if CLIENT == "elasticsearch":
        from elasticsearch import NotFoundError

        seen["license"] = body(client.license.get())["license"]["status"]
        seen["health"] = body(client.cluster.health())["status"]
        seen["template_before"] = bool(client.indices.exists_index_template(name="weir-logs"))
        client.indices.put_index_template(name="weir-logs", index_patterns=["weir-logs-*"], data_stream={})
        seen["template_after"] = bool(client.indices.exists_index_template(name="weir-logs"))
        got = body(client.indices.get_index_template(name="weir-logs"))
        seen["template_patterns"] = got["index_templates"][0]["index_template"]["index_patterns"]
        try:
            client.ilm.get_lifecycle(name="weir-policy")
            seen["policy_before"] = True
        except NotFoundError:
            seen["policy_before"] = False
        client.ilm.put_lifecycle(name="weir-policy", policy={"phases": {"hot": {"actions": {}}}})
        seen["policy_after"] = "weir-policy" in body(client.ilm.get_lifecycle(name="weir-policy"))
        client.ingest.put_pipeline(id="weir-pipe", processors=[])
        seen["pipeline"] = "weir-pipe" in body(client.ingest.get_pipeline(id="weir-pipe"))
    else:
        seen["license"] = client.transport.perform_request("GET", "/_license")["license"]["status"]
        seen["health"] = client.cluster.health()["status"]
        seen["template_before"] = bool(client.indices.exists_index_template(name="weir-logs"))
        client.indices.put_index_template(name="weir-logs", body={"index_patterns": ["weir-logs-*"]})
        seen["template_after"] = bool(client.indices.exists_index_template(name="weir-logs"))
        got = client.indices.get_index_template(name="weir-logs")
        seen["template_patterns"] = got["index_templates"][0]["index_template"]["index_patterns"]
        seen["legacy_template"] = bool(client.indices.exists_template(name="weir-legacy"))
        client.ingest.put_pipeline(id="weir-pipe", body={"processors": []})
        seen["pipeline"] = "weir-pipe" in client.ingest.get_pipeline(id="weir-pipe")
    return seen


def actions_command(client, helpers):
    ops = [
        {"_op_type": "index", "_index": "logs-a", "_id": "d1", "routing": "r1", "pipeline": "weir-pipe",
         "_source": {"n": 1, "msg": "first"}},
        {"_op_type": "create", "_index": "logs-a", "_source": {"n": 2, "msg": "second"}},
        {"_op_type": "update", "_index": "logs-a", "_id": "d1", "doc": {"msg": "first, edited"}},
        {"_op_type": "update", "_index": "logs-a", "_id": "d9", "doc": {"n": 9}, "doc_as_upsert": True},
        {"_op_type": "delete", "_index": "logs-a", "_id": "d2"},
    ]
    ok, errors = helpers.bulk(client, ops, refresh="wait_for")
    # filter_path as Logstash sends it, through the low-level call.
    lines = '{"create":{"_index":"logs-b"}}\n{"n":3}\n{"delete":{"_index":"logs-b"}}\n'
    if CLIENT == "elasticsearch":
        filtered = body(client.bulk(operations=lines, filter_path="errors,items.*.error,items.*.status"))
    else:
        filtered = client.bulk(body=lines, params={"filter_path": "errors,items.*.error,items.*.status"})
    return {"ok": ok, "errors": errors, "filtered": filtered}


def lines_of(payload):
    """The lines of a `_bulk` body as either client hands it down: one
    string, or a list of serialised lines."""
    if isinstance(payload, bytes):
        payload = payload.decode()
    if isinstance(payload, str):
        return payload.splitlines()
    return [x.decode() if isinstance(x, bytes) else x if isinstance(x, str) else json.dumps(x) for x in payload]


def retry_command(client, helpers, n):
    """Count every document sent and every per-item and whole-request 429
    the helper retried, by watching the transport under it."""
    sent = {"requests": 0, "documents": 0, "item_429": 0, "request_429": 0, "request_429_documents": 0}
    transport = client.transport
    inner = transport.perform_request

    def watched(method, path, *args, **kwargs):
        if not path.split("?")[0].endswith("/_bulk"):
            return inner(method, path, *args, **kwargs)
        documents = sum(1 for line in lines_of(kwargs.get("body")) if '"_index"' in line)
        sent["requests"] += 1
        sent["documents"] += documents
        try:
            response = inner(method, path, *args, **kwargs)
        except Exception as e:  # opensearch-py raises on a 429
            if getattr(e, "status_code", None) == 429:
                sent["request_429"] += 1
                sent["request_429_documents"] += documents
            raise
        # elasticsearch's transport returns the status; its client raises.
        if getattr(getattr(response, "meta", None), "status", 200) == 429:
            sent["request_429"] += 1
            sent["request_429_documents"] += documents
            return response
        items = body(response)["items"]
        sent["item_429"] += sum(1 for item in items if next(iter(item.values()))["status"] == 429)
        return response

    transport.perform_request = watched
    docs = ({"_index": "logs-r", "_id": f"r{i}", "_source": {"i": i, "pad": "x" * 1000}} for i in range(n))
    ok = 0
    failed = []
    for good, info in helpers.streaming_bulk(
        client, docs, chunk_size=500, max_retries=60, initial_backoff=0.1, max_backoff=0.5, raise_on_error=False
    ):
        if good:
            ok += 1
        else:
            failed.append(info)
    return dict(sent, ok=ok, failed=failed[:3])


def main():
    client, helpers = connect()
    if COMMAND == "startup":
        result = startup(client)
    elif COMMAND == "actions":
        result = actions_command(client, helpers)
    elif COMMAND == "retry":
        result = retry_command(client, helpers, int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown command {COMMAND}")
    print(json.dumps(result))


main()
