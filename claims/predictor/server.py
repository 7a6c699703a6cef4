"""`claims serve`: MLflow's scoring server for a package, with a bounded request size.

The app is MLflow's own (`/ping`, `/health`, `/version`, `/invocations`, the same JSON and CSV
formats as `mlflow models serve`); this module only adds a limit on the body size, answered with
413 and a JSON error before the body is read, and runs it in this process so SIGTERM stops it.
"""

from __future__ import annotations

import json
import os
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
                return await self.inner(scope, counted, send)
            except _TooLarge:
                return await too_large(scope, receive, send)

    return BodyLimit(app)


class _TooLarge(Exception):
    pass


def serve(package: Path, host: str, port: int, max_bytes: int | None = None) -> None:
    import uvicorn

    limit = max_bytes or int(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_BYTES))
    uvicorn.run(build_app(package, limit), host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
