"""The web process's front (README, "Processes"): granian's RSGI interface in front of the WSGI application.

Granian's WSGI interface hands the request body to a blocking thread as a stream, so a client that sends its
body a byte a second holds one of the few threads for as long as it likes, and a handful of them stall the
service (issue 16, finding 5; granian has no body-read timeout). Here the body is read in the event loop
first, whole, within WEB_BODY_TIMEOUT_SECONDS (408 when it is late, 413 at once when its declared length is
above the largest body any endpoint accepts); only then does the request take one of WEB_BLOCKING_THREADS
threads, which runs coliseum.wsgi.application (Django, with its lean routes) on the buffered body. A slow
client so costs a waiting coroutine, not a thread. Headers are bounded by granian itself
(--http1-header-read-timeout, from WEB_HEADER_TIMEOUT_SECONDS in the Procfile).

Responses: a complete response (nearly all of them) is sent in one step. A streaming or file response
(report, export and audit downloads) is iterated, and closed, by the one thread that made it (its database
connection and row-level-security scope are that thread's), which sends it in chunks of up to 256 KiB and
waits for each to be sent."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import orjson
from django.conf import settings
from granian.rsgi import ProtocolClosed

from coliseum.wsgi import application as wsgi_application  # first: it sets Django up

BODY_TIMEOUT_SECONDS = float(os.environ.get("WEB_BODY_TIMEOUT_SECONDS") or 10)
THREADS = int(os.environ.get("WEB_BLOCKING_THREADS") or 4)
CHUNK_BYTES = 256 * 1024
# The largest body an endpoint accepts: uploads (their own ceiling: reports.apis), ingestion batches, forms.
MAX_BODY_BYTES = (
    max(
        settings.UPLOAD_MAX_LOGO_BYTES,
        settings.UPLOAD_MAX_DOCUMENT_BYTES,
        settings.INGEST_WEBHOOK_MAX_BYTES,
        settings.INGEST_SEGMENT_BATCH_MAX_BYTES,
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0,
    )
    + 64 * 1024
)

_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="web")


class BodyTooLarge(Exception):
    pass


class FileWrapper:
    """wsgi.file_wrapper: Django's FileResponse hands its file here; read in large blocks, not 4 KiB ones."""

    def __init__(self, filelike: IO[bytes], block_size: int = CHUNK_BYTES) -> None:
        self.filelike = filelike
        self.block_size = max(block_size, CHUNK_BYTES)

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.filelike.read(self.block_size):
            yield chunk

    def close(self) -> None:
        self.filelike.close()


async def app(scope: Any, proto: Any) -> None:
    """The RSGI application granian serves (`--interface rsgi coliseum.front:app`)."""
    if scope.proto != "http":  # the web process runs with --no-ws; WebSockets are Daphne's
        return
    headers = scope.headers
    try:
        body = await _read_body(headers, proto)
    except BodyTooLarge:
        _refuse(scope, proto, 413, "payload_too_large", "The request body is too large.")
        return
    except TimeoutError:
        _refuse(scope, proto, 408, "request_timeout", "The request body was not received in time.")
        return
    except ValueError:
        _refuse(scope, proto, 400, "bad_request", "The Content-Length header is invalid.")
        return
    except ProtocolClosed:  # the client went away before its body was complete: nobody to answer
        return
    environ = _environ(scope, headers, body)
    loop = asyncio.get_running_loop()
    answer = await loop.run_in_executor(_pool, _call_application, environ, proto, loop)
    if answer is not None:
        status, response_headers, content = answer
        proto.response_bytes(status, response_headers, content)


async def _read_body(headers: Any, proto: Any) -> bytes:
    length = headers.get("content-length")
    chunked = "transfer-encoding" in headers
    if length is not None and not chunked:
        declared = int(length)  # ValueError: 400
        if declared < 0:
            raise ValueError(length)
        if declared > MAX_BODY_BYTES:
            raise BodyTooLarge
        if declared == 0:
            return b""
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            body: bytes = await proto()
        return body
    if not chunked:
        return b""
    parts: list[bytes] = []
    size = 0
    async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
        async for chunk in proto:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BodyTooLarge
            parts.append(chunk)
    return b"".join(parts)


def _refuse(scope: Any, proto: Any, status: int, code: str, message: str) -> None:
    from coliseum.errors import API_PREFIXES, error_body

    if scope.path.startswith(API_PREFIXES):
        content = orjson.dumps(error_body(code, message))
        content_type = "application/json"
    else:
        content = message.encode()
        content_type = "text/plain; charset=utf-8"
    proto.response_bytes(status, [("content-type", content_type), ("connection", "close")], content)


def _environ(scope: Any, headers: Any, body: bytes) -> dict[str, Any]:
    server_host, _, server_port = scope.server.rpartition(":")
    client_host, _, client_port = scope.client.rpartition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        # WSGI carries the path as bytes in a latin-1 str; granian gives it percent-decoded, as text.
        "PATH_INFO": scope.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": client_host.strip("[]"),
        "REMOTE_PORT": client_port,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    for name, value in headers.items():
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name not in ("content-length", "transfer-encoding"):
            key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    if "HTTP_HOST" not in environ and scope.authority:  # HTTP/2 sends :authority instead of Host
        environ["HTTP_HOST"] = scope.authority
    return environ


def _call_application(
    environ: dict[str, Any], proto: Any, loop: asyncio.AbstractEventLoop
) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """In a pool thread: the application's answer, whole; or, for a streaming one, sent from here (None)."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[..., Any]:
        if exc_info and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [int(status[:3]), list(headers)]
        return written.append

    result = wsgi_application(environ, start_response)
    if isinstance(result, list):  # coliseum.wsgi answers every complete response as one list
        return started[0], started[1], b"".join([*written, *result])
    try:
        _stream(result, started, written, proto, loop)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return None


def _stream(
    result: Iterable[bytes],
    started: list[Any],
    written: list[bytes],
    proto: Any,
    loop: asyncio.AbstractEventLoop,
) -> None:
    chunks = iter(result)
    first = next(chunks, b"")  # start_response may be called on the first iteration

    async def open_stream() -> Any:
        return proto.response_stream(started[0], started[1])

    transport = asyncio.run_coroutine_threadsafe(open_stream(), loop).result()

    def send(data: bytes) -> bool:
        """On the loop, waiting until it is sent (a slow reader slows the thread down); False once the client
        is gone or wants no body (HEAD)."""

        async def sending() -> None:
            await transport.send_bytes(data)

        try:
            asyncio.run_coroutine_threadsafe(sending(), loop).result()
        except ProtocolClosed:
            return False
        return True

    pending = [*written, first]
    size = sum(map(len, pending))
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= CHUNK_BYTES:
            if not send(b"".join(pending)):
                return
            pending, size = [], 0
    if size:
        send(b"".join(pending))
