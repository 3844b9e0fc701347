#!/usr/bin/env python3
"""Refresh receiver/sources/cdevents_schemas/ from the Go module github.com/cdevents/sdk-go.

The CDEvents JSON schemas ship in that module as Go string literals (pkg/api/schemas.go, map
`SchemasById`, keyed by schema `$id`). This takes the module from the Go module proxy (`go mod
download`, into Go's module cache, outside the repo), and writes every schema whose `$id` starts
with https://cdevents.dev/<spec>/schema/ to cdevents_schemas/<spec>/<rest of the key>.json (the key, as the SDK looks it up;
the pipelinerun schemas' own `$id` spells `pipeline-run`).
Nothing else of the module is copied.
Usage: scripts/refresh-cdevents-schemas.py [SDK_VERSION [SPEC_VERSION]]  (v0.5.0, 0.4.1: the
sdk-go that notification-controller v1.9.0 requires, and the spec its `v04` reader validates).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

MODULE = "github.com/cdevents/sdk-go"
DEST = Path(__file__).resolve().parents[1] / "receiver" / "sources" / "cdevents_schemas"
_ENTRY = re.compile(r'^\t\t"(https://cdevents\.dev/[^"]+)": `(.*?)`,$', re.M | re.S)


def main() -> None:
    sdk = sys.argv[1] if len(sys.argv) > 1 else "v0.5.0"
    spec = sys.argv[2] if len(sys.argv) > 2 else "0.4.1"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    with tempfile.TemporaryDirectory() as work:  # go mod download wants no enclosing module
        out = subprocess.run(
            ["go", "mod", "download", "-json", f"{MODULE}@{sdk}"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    source = Path(json.loads(out.stdout)["Dir"]) / "pkg" / "api" / "schemas.go"
    prefix = f"https://cdevents.dev/{spec}/schema/"
    target = DEST / spec
    target.mkdir(parents=True, exist_ok=True)
    for old in target.rglob("*.json"):
        old.unlink()
    written = 0
    for schema_id, text in _ENTRY.findall(source.read_text()):
        if not schema_id.startswith(prefix):
            continue
        schema = json.loads(text)
        path = target / f"{schema_id.removeprefix(prefix)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=2) + "\n")
        written += 1
    if not written:
        sys.exit(f"no schema of spec {spec} in {source}")
    print(f"wrote {written} schemas of spec {spec} from {MODULE}@{sdk} to {target}")


if __name__ == "__main__":
    main()
