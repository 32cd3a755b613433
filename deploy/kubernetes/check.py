"""Check deploy/kubernetes/ without a cluster: every manifest against the
Kubernetes JSON schemas bundled in the pinned `kubernetes-validate` (strict:
unknown fields are errors), and every Weir config held in a ConfigMap with
`weir validate`.

usage: check.py WEIR_BINARY            (run from anywhere; exits 1 on failure)
Run by `tests/e2e/deploy.rs` with the clients' venv (tests/clients/python.sh).
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33.0"
HERE = pathlib.Path(__file__).resolve().parent

# What the manifests take from Secrets and the environment, for `weir validate`.
ENVIRONMENT = {
    "WEIR_FORWARD_SHARED_KEY": "k",
    "WEIR_HTTP_TOKEN": "t",
    "ES_URL": "https://elasticsearch:9200",
    "ES_API_KEY": "key",
    "KAFKA_BROKERS": "kafka:9092",
}


def main():
    weir = sys.argv[1]
    failures = []
    manifests = sorted(HERE.glob("**/*.yaml"))
    for path in manifests:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            name = f"{path.relative_to(HERE)}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
                print(f"ok      {name}")
            except kubernetes_validate.ValidationError as e:
                failures.append(f"{name}: {e.message} at {'.'.join(map(str, e.path))}")
            if doc.get("kind") == "ConfigMap" and "weir.yaml" in doc.get("data", {}):
                with tempfile.TemporaryDirectory() as tmp:
                    config = pathlib.Path(tmp) / "weir.yaml"
                    config.write_text(doc["data"]["weir.yaml"])
                    out = subprocess.run(
                        [weir, "validate", "-c", str(config)],
                        env={**os.environ, **ENVIRONMENT},
                        capture_output=True,
                        text=True,
                    )
                    if out.returncode != 0:
                        failures.append(f"{name}: weir validate: {out.stdout}{out.stderr}")
                    else:
                        print(f"ok      {name}: weir validate")
    if not manifests:
        failures.append("no manifests found")
    for failure in failures:
        print(f"FAILED  {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
