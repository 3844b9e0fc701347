"""Reference (a), the ceiling: a minimal aiohttp handler that checks X-Hub-Signature-256 and
parses the JSON, nothing else. Run as `python -m benchmarks.harness.minimal --port N` with the
secret in $BENCH_WEBHOOK_SECRET (servers.start_minimal does).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os

from aiohttp import web


def serve(*, port: int) -> None:
    """Check X-Hub-Signature-256 and parse the JSON, nothing else."""
    secret = os.environ["BENCH_WEBHOOK_SECRET"].encode()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return web.json_response({"error": "bad signature"}, status=401)
        payload = json.loads(body)
        return web.json_response({"status": "ok", "ref": payload.get("ref")})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    serve(port=parser.parse_args().port)


if __name__ == "__main__":
    main()
