"""`claims serve`: MLflow's scoring server for a package, with a bounded request size.

The app is MLflow's own (`/ping`, `/health`, `/version`, `/invocations`, the same JSON and CSV
formats as `mlflow models serve`); this module only adds a limit on the body size, answered with
413 and a JSON error before the body is read, mends lone surrogates in JSON bodies (see
`_mend_json`), and runs it in this process so SIGTERM stops it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

MAX_BYTES_ENV = "CLAIMS_SERVE_MAX_BYTES"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024


def _error(status: int, code: str, message: str):
    from starlette.responses import Response

    return Response(json.dumps({"error_code": code, "message": message}), status_code=status,
                    media_type="application/json")


def build_app(package: Path, max_bytes: int):
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    app = scoring_server.init(mlflow.pyfunc.load_model(str(package)))

    class BodyLimit:
        """ASGI wrapper: refuses a declared or actual body over `max_bytes` with 413."""

        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.inner(scope, receive, send)
            too_large = _error(413, "REQUEST_TOO_LARGE", f"body over {max_bytes} bytes ({MAX_BYTES_ENV})")
            declared = dict(scope.get("headers") or []).get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
                return await too_large(scope, receive, send)
            seen = 0

            async def counted():
                nonlocal seen
                message = await receive()
                seen += len(message.get("body", b""))
                if seen > max_bytes:  # chunked body with no declared length
                    raise _TooLarge
                return message

            try:
                if _is_json(scope):
                    raw = await _read_body(counted)
                    if raw is None:  # the client went away
                        return None
                    body = _mend_json(raw)
                    if body is not raw:
                        scope = _with_length(scope, len(body))
                    return await self.inner(scope, _replay(body, receive), send)
                return await self.inner(scope, counted, send)
            except _TooLarge:
                return await too_large(scope, receive, send)

    return BodyLimit(app)


class _TooLarge(Exception):
    pass


# A JSON escape of a surrogate: in a pair (an emoji sent by Python's json.dumps) or lone. Bodies without
# one, nearly all, are passed on untouched.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _mend_json(body: bytes) -> bytes:
    """The body with each lone surrogate made U+FFFD. "\\ud800" is valid JSON, but MLflow's pandas
    strings (Arrow, UTF-8) refuse it: the request got a 400 (a UnicodeEncodeError) before the model saw it."""
    from claims.predictor.inputs import replace_lone_surrogates

    if not _SURROGATE_ESCAPE.search(body):
        return body
    try:
        parsed = json.loads(body)
    except ValueError:  # not JSON after all: MLflow reports it
        return body
    mended = replace_lone_surrogates(parsed)
    return body if mended == parsed else json.dumps(mended).encode()


def _is_json(scope) -> bool:
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
    return content_type.split(b";")[0].strip().lower() == b"application/json"


async def _read_body(receive) -> bytes | None:
    """The whole request body (MLflow reads it whole before parsing anyway); None if the client left."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    """An ASGI receive that hands over `body` in one message, then waits as `receive` does."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed():
        return pending.pop() if pending else await receive()

    return replayed


def _with_length(scope, length: int):
    """The scope with its content-length matching a mended body."""
    headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def serve(package: Path, host: str, port: int, max_bytes: int | None = None) -> None:
    import uvicorn

    limit = max_bytes or int(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_BYTES))
    uvicorn.run(build_app(package, limit), host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
