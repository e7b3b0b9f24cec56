"""The web server behind ``handsdk serve``: one page, its static files, a WebSocket that tracks
the frames a browser sends, and an upload endpoint that tracks a whole file.

- ``GET /`` the page; ``GET /static/...`` its script and style (package data: no CDN, no build).
- ``WS /ws`` live tracking: binary frame messages in (:mod:`handsdk_serve.protocol`), one JSON
  result per frame out. One :class:`~handsdk.Tracker` per connection (tracks persist from frame
  to frame), closed with the connection.
- ``POST /api/track?name=clip.mp4`` the file's bytes in, its results out as JSON lines (the
  ``jsonl`` writer's format), streamed while the file is tracked.
- ``GET /api/info`` version, backend, limits and the number of clients.

Tracking is CPU-bound: it runs on a thread pool of ``max_clients`` workers, so the event loop
keeps serving every other client while one frame is tracked. Each connection and each upload
takes one of ``max_clients`` slots; docs/serve.md lists the messages and limits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import logging
import math
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np
import uvicorn
from handsdk_signs.speller import Speller
from handsdk_sources import VIDEO_SUFFIXES
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from handsdk import Tracker, __version__
from handsdk.config import Config, PluginSection, load_config
from handsdk.data import IMAGE_SUFFIXES
from handsdk.errors import ConfigError, HandSDKError, SourceError, worth_logging
from handsdk.plugins import components
from handsdk.sources import open_source
from handsdk.types import HAND_CONNECTIONS, FrameResult

from . import protocol as P

log = logging.getLogger("handsdk_serve")

STATIC = Path(__file__).resolve().with_name("static")

#: What the page can switch on: choice -> (consumer plugin, options it always gets).
CHOICES: dict[str, tuple[str, dict[str, Any]]] = {
    "gestures": ("gesture_recognizer", {"key": "gesture"}),
    "asl_letters": ("sign_classifier", {"vocabulary": "asl_letters", "key": "sign"}),
    "digits": ("sign_classifier", {"vocabulary": "digits", "key": "digit"}),
}
DEFAULT_CHOICES = ("gestures", "asl_letters")
#: The speller reads the first of these that is switched on: (choice, label key).
SPELL_FROM = (("asl_letters", "sign"), ("digits", "digit"))
#: An uploaded photo may be at most this many pixels on a side (its header is read first).
MAX_PHOTO_SIDE = 8192


@dataclass(frozen=True)
class Limits:
    """What one server accepts (``handsdk serve --help`` names the options)."""

    max_clients: int = 8  # open WebSockets plus uploads being tracked
    max_frame_bytes: int = 2 * 1024 * 1024  # one frame message
    max_side: int = 1920  # a frame's larger side, pixels
    max_upload_bytes: int = 200 * 1024 * 1024  # one file upload
    max_file_frames: int = 18000  # frames tracked from one uploaded video (10 min at 30 FPS)
    idle_timeout_s: float = 60.0  # a connection with no message for this long is closed

    def __post_init__(self) -> None:
        for name, lo in (("max_clients", 1), ("max_frame_bytes", 1024), ("max_side", 16),
                         ("max_upload_bytes", 1024), ("max_file_frames", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ConfigError(f"handsdk serve: {name} must be an integer >= {lo}, got {value!r}")
        t = self.idle_timeout_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ConfigError(f"handsdk serve: idle_timeout_s must be a number > 0, got {t!r}")


def _page_consumers(cfg: Config) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    """From a config's ``[[consumers]]``: the options of each page choice it configures, the
    choices it names (the page's first selection) and what serve leaves out (writers and the
    overlay would have every connection write the same file)."""
    options: dict[str, dict[str, Any]] = {}
    chosen: list[str] = []
    ignored: list[str] = []
    for section in cfg.consumers:
        opts = dict(section.options)
        choice = None
        if section.name == "gesture_recognizer":
            choice = "gestures"
        elif section.name == "sign_classifier":
            vocabulary = opts.get("vocabulary", "asl_letters")
            choice = vocabulary if vocabulary in ("asl_letters", "digits") else None
        if choice is None:
            ignored.append(section.name)
            continue
        for fixed in CHOICES[choice][1]:
            opts.pop(fixed, None)
        options[choice] = opts
        if choice not in chosen:
            chosen.append(choice)
    return options, chosen, ignored


def _same_origin(headers: Mapping[str, str]) -> bool:
    """A browser sends ``Origin``: only this server's own page may use the WebSocket and the
    upload (another site open in the same browser may not). Non-browser clients send none."""
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def _discard_tracker(server: ServeApp) -> Callable[[concurrent.futures.Future], None]:
    """A done-callback closing the tracker a cancelled build still produced."""

    def done(fut: concurrent.futures.Future) -> None:
        if not fut.cancelled() and fut.exception() is None:
            server.close_tracker(fut.result())

    return done


class ServeApp:
    """The ASGI app (:attr:`asgi`) and everything it shares: the base config, the limits, the
    thread pool and the count of open clients and trackers."""

    def __init__(self, config: Any = None, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.base = load_config(config)
        self._options, chosen, ignored = _page_consumers(self.base)
        for name in ignored:
            log.warning("handsdk serve leaves out the config's consumer %r: the page offers %s, and "
                        "each connection runs its own tracker", name, ", ".join(CHOICES))
        self.default_choices = tuple(chosen) or DEFAULT_CHOICES
        self.default_filter = self.base.filter.name
        self.filters = sorted(components("filter"))
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.limits.max_clients, thread_name_prefix="handsdk-serve")
        self._lock = threading.Lock()
        self.clients = 0  # slots taken: open WebSockets and uploads being tracked
        self.open_trackers = 0
        self.backend_device = ""
        self.asgi = Starlette(routes=[
            Route("/", self._index),
            Route("/api/info", self._info),
            Route("/api/track", self._track_file, methods=["POST"]),
            WebSocketRoute("/ws", self._websocket),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ])

    # -- trackers --------------------------------------------------------------------------------
    def selection(self, consumers: Any = None, filter_name: Any = None) -> tuple[tuple[str, ...], str]:
        """The page's choice of consumers and filter, checked (None: the defaults)."""
        if consumers is None:
            consumers = list(self.default_choices)
        if not isinstance(consumers, (list, tuple)) or not all(isinstance(c, str) for c in consumers):
            raise ConfigError(f"consumers must be a list of names ({', '.join(CHOICES)}), got {consumers!r}")
        unknown = [c for c in consumers if c not in CHOICES]
        if unknown:
            raise ConfigError(f"unknown consumer {', '.join(map(repr, unknown))}; valid: {', '.join(CHOICES)}")
        filter_name = self.default_filter if filter_name is None else filter_name
        if filter_name not in self.filters:
            raise ConfigError(f"unknown filter {filter_name!r}; valid: {', '.join(self.filters)}")
        return tuple(c for c in CHOICES if c in consumers), filter_name

    def tracker_config(self, choices: tuple[str, ...], filter_name: str) -> Config:
        """The base config with the page's consumers and filter."""
        cfg = copy.deepcopy(self.base)
        cfg.consumers = [PluginSection(CHOICES[c][0], {**self._options.get(c, {}), **CHOICES[c][1]},
                                       origin=f"handsdk serve {c!r}") for c in choices]
        if filter_name != self.base.filter.name:
            cfg.filter = PluginSection(filter_name, {})
        return cfg

    def new_tracker(self, choices: tuple[str, ...], filter_name: str) -> Tracker:
        tracker = Tracker(self.tracker_config(choices, filter_name))
        with self._lock:
            self.open_trackers += 1
            self.backend_device = str(getattr(tracker.backend, "device", ""))
        return tracker

    def close_tracker(self, tracker: Tracker) -> None:
        try:
            tracker.close()
        except Exception as exc:  # a consumer failing to close must not leak the count
            log.error("closing a tracker failed: %s: %s", type(exc).__name__, exc)
        finally:
            with self._lock:
                self.open_trackers -= 1

    def check(self) -> None:
        """Build and close one tracker with the default selection, so a bad config or a missing
        backend fails before the server listens, not on the first connection."""
        self.close_tracker(self.new_tracker(self.default_choices, self.default_filter))

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        """Wait for the frames being tracked, then stop the pool's threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- client slots ----------------------------------------------------------------------------
    def _acquire(self) -> bool:
        with self._lock:
            if self.clients >= self.limits.max_clients:
                return False
            self.clients += 1
            return True

    def _release(self) -> None:
        with self._lock:
            self.clients -= 1

    def _busy(self) -> str:
        n = self.limits.max_clients
        return f"server busy: {n} of {n} clients connected (--max-clients {n}); try again later"

    # -- routes ----------------------------------------------------------------------------------
    async def _index(self, request: Request) -> Response:
        csp = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
               "connect-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
        return FileResponse(STATIC / "index.html", headers={
            "Cache-Control": "no-cache", "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff"})

    def info(self) -> dict[str, Any]:
        return {"version": __version__, "backend": self.base.backend.name, "device": self.backend_device,
                "filter": self.default_filter, "filters": self.filters, "choices": list(CHOICES),
                "consumers": list(self.default_choices), "limits": asdict(self.limits),
                "clients": self.clients, "open_trackers": self.open_trackers}

    async def _info(self, request: Request) -> Response:
        return JSONResponse(self.info())

    async def _websocket(self, ws: WebSocket) -> None:
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        if not _same_origin(ws.headers):
            log.warning("refused a WebSocket from %s: a page from %s, not this server", peer,
                        ws.headers.get("origin"))
            await ws.close(code=P.CLOSE_POLICY)  # before accept: the handshake gets HTTP 403
            return
        if not self._acquire():
            reason = self._busy()
            log.warning("refused a WebSocket from %s: %s", peer, reason)
            try:
                await ws.accept()
                await ws.close(code=P.CLOSE_BUSY, reason=reason[:120])
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass
            return
        try:
            await ws.accept()
            await _Connection(self, ws, peer).serve()
        except (WebSocketDisconnect, OSError):
            pass
        finally:
            self._release()

    async def _track_file(self, request: Request) -> Response:
        def refuse(status: int, message: str) -> Response:
            log.warning("refused an upload from %s: %s", peer, message)
            return JSONResponse({"error": message}, status_code=status)

        peer = f"{request.client.host}:{request.client.port}" if request.client else "?"
        if not _same_origin(request.headers):
            return refuse(403, f"a page from {request.headers.get('origin')} may not use this server")
        name = request.query_params.get("name", "")
        suffix = Path(name).suffix.lower()
        if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            return refuse(415, f"{name!r}: give a photo ({', '.join(sorted(IMAGE_SUFFIXES))}) or a video "
                               f"({', '.join(sorted(VIDEO_SUFFIXES))}) by its file name (?name=...)")
        try:
            consumers = request.query_params.get("consumers")
            choices, filter_name = self.selection(
                None if consumers is None else [c for c in consumers.split(",") if c],
                request.query_params.get("filter"))
        except ConfigError as exc:
            return refuse(400, str(exc))
        limit = self.limits.max_upload_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return refuse(413, f"the file is {int(declared):,} bytes; this server takes at most {limit:,}")
        if not self._acquire():
            return refuse(503, self._busy())
        folder = Path(tempfile.mkdtemp(prefix="handsdk-serve-"))
        job: _FileJob | None = None
        try:
            path, size = folder / f"upload{suffix}", 0
            with path.open("wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        return refuse(413, f"the file is over {limit:,} bytes, this server's limit")
                    f.write(chunk)
            if size == 0:
                return refuse(400, "the upload is empty")
            fut = self.submit(_FileJob, self, path, name, choices, filter_name)
            try:
                job = await asyncio.wrap_future(fut)
            except asyncio.CancelledError:
                fut.add_done_callback(lambda f: f.cancelled() or f.exception() or f.result().close())
                raise
            stream, job, folder = _JsonlStream(self, job, folder, peer), None, None  # handed over
            return stream
        except HandSDKError as exc:
            return refuse(422, str(exc))
        except ClientDisconnect:
            log.info("upload from %s: the client left before the file arrived", peer)
            return Response(status_code=400)
        finally:
            if folder is not None:  # not handed to the stream, which cleans up after itself
                if job is not None:
                    job.close()
                shutil.rmtree(folder, ignore_errors=True)
                self._release()


class _Connection:
    """One WebSocket client: its tracker, its speller, its counters."""

    def __init__(self, server: ServeApp, ws: WebSocket, peer: str):
        self.server, self.ws, self.peer = server, ws, peer
        self.tracker: Tracker | None = None
        self.pending: concurrent.futures.Future | None = None  # the frame being tracked
        self.speller = Speller()
        self.spell_key: str | None = None
        self.choices: tuple[str, ...] = ()
        self.filter = ""
        self.frames = 0
        self.track_ms = 0.0
        self.errors: Counter[str] = Counter()
        self.why = "the client closed"

    async def serve(self) -> None:
        t0 = time.perf_counter()
        log.info("client %s connected", self.peer)
        try:
            await self._serve()
        finally:
            self._close_tracker()
            mean = self.track_ms / self.frames if self.frames else 0.0
            errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
            log.info("client %s closed (%s) after %.0f s: %d frames, %.1f ms each on the server, errors: %s",
                     self.peer, self.why, time.perf_counter() - t0, self.frames, mean, errors)

    async def _serve(self) -> None:
        choices, filter_name = self.server.default_choices, self.server.default_filter
        try:
            self._use(await self._build(choices, filter_name), choices, filter_name)
        except HandSDKError as exc:
            self.why = f"the tracker could not be built: {exc}"
            log.error("client %s: %s", self.peer, self.why)
            await self._send({"type": "error", "code": P.TRACKER_ERROR, "message": str(exc), "id": None})
            await self.ws.close(code=P.CLOSE_ERROR, reason="the tracker could not be built")
            return
        if not await self._send(self._hello()):
            return
        idle = self.server.limits.idle_timeout_s
        while True:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), idle)
            except asyncio.TimeoutError:
                self.why = f"idle for {idle:g} s"
                with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                    await self.ws.close(code=P.CLOSE_IDLE, reason=f"no message for {idle:g} s")
                return
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("bytes") is not None:
                alive = await self._frame(msg["bytes"])
            else:
                alive = await self._text(msg.get("text") or "")
            if not alive:
                self.why = "the client left mid-frame"
                return

    def _hello(self) -> dict[str, Any]:
        s = self.server
        return {"type": "hello", "version": __version__, "backend": s.base.backend.name,
                "device": s.backend_device, "consumers": list(self.choices), "filter": self.filter,
                "choices": list(CHOICES), "filters": s.filters, "spell_from": self.spell_key,
                "connections": [list(c) for c in HAND_CONNECTIONS],
                "limits": {"max_frame_bytes": s.limits.max_frame_bytes, "max_side": s.limits.max_side,
                           "max_upload_bytes": s.limits.max_upload_bytes,
                           "idle_timeout_s": s.limits.idle_timeout_s}}

    # -- the tracker ------------------------------------------------------------------------------
    async def _build(self, choices: tuple[str, ...], filter_name: str) -> Tracker:
        fut = self.server.submit(self.server.new_tracker, choices, filter_name)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:  # shutting down: the tracker still being built is closed once built
            fut.add_done_callback(_discard_tracker(self.server))
            raise

    def _use(self, tracker: Tracker, choices: tuple[str, ...], filter_name: str) -> None:
        old, self.tracker = self.tracker, tracker
        if old is not None:
            self.server.close_tracker(old)
        self.choices, self.filter = choices, filter_name
        self.spell_key = next((key for c, key in SPELL_FROM if c in choices), None)
        self.speller.candidate, self.speller.count = None, 0

    def _close_tracker(self) -> None:
        tracker, self.tracker = self.tracker, None
        if tracker is None:
            return
        if self.pending is not None:  # closed once the frame it is tracking is done (now, if it is)
            self.pending.add_done_callback(lambda _: self.server.close_tracker(tracker))
        else:
            self.server.close_tracker(tracker)

    # -- messages ---------------------------------------------------------------------------------
    async def _send(self, obj: dict[str, Any]) -> bool:
        """Send a JSON message; False when the client has gone."""
        try:
            await self.ws.send_text(json.dumps(obj, separators=(",", ":")))
            return True
        except (WebSocketDisconnect, RuntimeError, OSError):
            return False

    async def _error(self, code: str, message: str, frame_id: int | None = None) -> bool:
        self.errors[code] += 1
        if worth_logging(self.errors[code]):
            log.warning("client %s: %s: %s", self.peer, code, message)
        return await self._send({"type": "error", "code": code, "message": message, "id": frame_id})

    async def _frame(self, data: bytes) -> bool:
        limits = self.server.limits
        try:
            frame = P.parse_frame(data, limits.max_frame_bytes, limits.max_side)
        except P.FrameRejected as exc:
            frame_id = P.HEADER.unpack_from(data)[1] if data[:4] == P.MAGIC and len(data) >= P.HEADER.size else None
            return await self._error(exc.code, str(exc), frame_id)
        t0 = time.perf_counter()
        self.pending = self.server.submit(_track, self.tracker, frame)
        try:
            result, decode_ms, track_ms = await asyncio.wrap_future(self.pending)
        except P.FrameRejected as exc:
            return await self._error(exc.code, str(exc), frame.id)
        except Exception as exc:  # the tracker or a plugin failed: this client hears of it, the rest go on
            return await self._error(P.TRACKER_ERROR, f"{type(exc).__name__}: {exc}", frame.id)
        finally:
            if self.pending.done():
                self.pending = None
        self.frames += 1
        self.track_ms += track_ms
        return await self._send({
            "type": "result", "id": frame.id, "t": frame.timestamp_ms,
            "server_ms": {"decode": round(decode_ms, 2), "track": round(track_ms, 2),
                          "total": round(1000 * (time.perf_counter() - t0), 2)},
            "result": result.to_dict(), "speller": self._spell(result)})

    def _spell(self, result: FrameResult) -> dict[str, Any] | None:
        if self.spell_key is None:
            return None
        label = None
        if result.hands:
            label = max(result.hands, key=lambda h: h.size).labels.get(self.spell_key)
        committed = self.speller.update(label.name if label else None, label.score if label else 0.0)
        return {"text": self.speller.text, "current": label.to_dict() if label else None,
                "progress": round(self.speller.progress, 3), "committed": committed,
                "min_score": self.speller.min_score}

    async def _text(self, text: str) -> bool:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            return await self._error(P.BAD_MESSAGE, "a text message must be a JSON object with a 'type' "
                                     "(config or reset); frames go as binary messages")
        kind = msg.get("type")
        if kind == "config":
            try:
                choices, filter_name = self.server.selection(msg.get("consumers"), msg.get("filter"))
                tracker = await self._build(choices, filter_name)
            except HandSDKError as exc:
                return await self._error(P.BAD_CONFIG, f"{exc} (the tracker is unchanged)")
            self._use(tracker, choices, filter_name)
            log.info("client %s: consumers %s, filter %s", self.peer, ", ".join(choices) or "none", filter_name)
            return await self._send({"type": "config", "consumers": list(choices), "filter": filter_name,
                                     "spell_from": self.spell_key})
        if kind == "reset":
            self.speller.reset()
            if self.tracker is not None:
                self.tracker.reset()
            return await self._send({"type": "reset"})
        return await self._error(P.BAD_MESSAGE, f"unknown message type {kind!r}; known: config, reset")


def _track(tracker: Tracker, frame: P.Frame) -> tuple[FrameResult, float, float]:
    """Decode and track one frame (on a pool thread): the result, decode ms, track ms."""
    t0 = time.perf_counter()
    image = cv2.imdecode(np.frombuffer(frame.image, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise P.FrameRejected(P.BAD_IMAGE, f"the {frame.format} image ({len(frame.image):,} bytes) does "
                                           "not decode (truncated or corrupt)")
    t1 = time.perf_counter()
    result = tracker.process(image, frame.timestamp_ms)
    return result, 1000 * (t1 - t0), 1000 * (time.perf_counter() - t1)


class _FileJob:
    """An uploaded photo or video being tracked, one frame per call of :meth:`next_line` (each
    on a pool thread): photos with ``Tracker.detect``, videos with ``Tracker.process``."""

    def __init__(self, server: ServeApp, path: Path, name: str, choices: tuple[str, ...], filter_name: str):
        self.server, self.name = server, name
        self.source: Any = None
        self.count = self.with_hands = 0
        self.still = path.suffix.lower() in IMAGE_SUFFIXES
        if self.still:
            with path.open("rb") as f:
                head = f.read(1 << 16)
            try:
                _, width, height = P.image_size(head)
            except P.FrameRejected:
                width = height = 0  # another format (bmp, webp, ...): OpenCV reads it or says it cannot
            if max(width, height) > MAX_PHOTO_SIDE:
                raise SourceError(f"{name}: the photo is {width}x{height}; at most {MAX_PHOTO_SIDE} px on a side")
            image = cv2.imread(str(path))
            if image is None:
                raise SourceError(f"{name}: not an image OpenCV can read")
            self.frames: Any = iter([(image, 0.0)])
            self.total = 1
        else:
            try:
                self.source = open_source(str(path))
            except SourceError as exc:
                raise SourceError(str(exc).replace(str(path), name)) from None
            self.frames = iter(self.source)
            self.total = min(len(self.source) or server.limits.max_file_frames, server.limits.max_file_frames)
        try:
            self.tracker: Tracker | None = server.new_tracker(choices, filter_name)
        except BaseException:
            self.close()
            raise

    def next_line(self) -> bytes | None:
        """The next frame's result as one JSON line; None at the end."""
        if self.count >= self.server.limits.max_file_frames or self.tracker is None:
            return None
        item = next(self.frames, None)
        if item is None:
            return None
        frame, ts = item
        if self.still:
            hands = self.tracker.detect(frame)
            result = FrameResult(0, 0.0, hands, (frame.shape[1], frame.shape[0]))
        else:
            result = self.tracker.process(frame, ts)
        self.count += 1
        self.with_hands += bool(result.hands)
        return (json.dumps(result.to_dict(), separators=(",", ":")) + "\n").encode()

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None
        tracker, self.tracker = getattr(self, "tracker", None), None
        if tracker is not None:
            self.server.close_tracker(tracker)


class _JsonlStream(Response):
    """Streams a :class:`_FileJob`'s lines as they are tracked; stops when the client leaves.
    Whatever happens, it closes the job, deletes the upload and frees the client slot."""

    media_type = "application/x-ndjson"

    def __init__(self, server: ServeApp, job: _FileJob, folder: Path, peer: str):
        self.server, self.job, self.folder, self.peer = server, job, folder, peer
        self.status_code = 200
        self.background = None
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(job.name).stem) or "handsdk"
        self.init_headers({"X-Handsdk-Frames": str(job.total), "Cache-Control": "no-store",
                           "Content-Disposition": f'attachment; filename="{stem}.jsonl"'})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.ensure_future(listen())
        pending: concurrent.futures.Future | None = None
        t0, why = time.perf_counter(), "done"
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while True:
                if gone.is_set():
                    why = "the client left mid-file"
                    break
                pending = self.server.submit(self.job.next_line)
                line = await asyncio.wrap_future(pending)
                if line is None:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    break
                await send({"type": "http.response.body", "body": line, "more_body": True})
        except OSError:  # the client went away while a line was sent
            why = "the client left mid-file"
        except Exception as exc:  # the tracker failed mid-file: the stream just ends early
            why = f"failed: {type(exc).__name__}: {exc}"
            log.error("upload %s from %s: %s", self.job.name, self.peer, why)
        finally:
            listener.cancel()
            job, folder, server = self.job, self.folder, self.server

            def cleanup(_: Any = None) -> None:
                job.close()
                shutil.rmtree(folder, ignore_errors=True)
                server._release()

            if pending is not None:  # after the frame being tracked, if one is
                pending.add_done_callback(cleanup)
            else:
                cleanup()
            log.info("upload %s from %s: %s, %d frames (a hand in %d) in %.1f s", job.name, self.peer, why,
                     job.count, job.with_hands, time.perf_counter() - t0)


# -- running it ------------------------------------------------------------------------------------
def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0..65535 (0: any free port), got {port!r}")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r}: not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise HandSDKError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def uvicorn_config(app: ServeApp, verbose: bool = False) -> uvicorn.Config:
    # frames over the app's limit (up to 4x) get an error message and the connection stays
    # open; larger ones are cut off by the WebSocket layer (close code 1009)
    return uvicorn.Config(app.asgi, log_config=None, log_level="info" if verbose else "warning",
                          access_log=verbose, ws="websockets-sansio", lifespan="off",
                          ws_max_size=max(4 * app.limits.max_frame_bytes, 1 << 20),
                          ws_per_message_deflate=False, timeout_graceful_shutdown=5)


class BackgroundServer:
    """``ServeApp`` served by uvicorn on a thread of its own: for tests, benchmarks and apps
    that embed the demo. ``with BackgroundServer(ServeApp()) as s: ... s.url``."""

    def __init__(self, app: ServeApp, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        self.app, self.host, self.port, self.verbose = app, host, port, verbose
        self.sock: socket.socket | None = None
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.sock is not None, "start() first"
        return url_of(self.sock)

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self.sock = bind(self.host, self.port)
        self.server = uvicorn.Server(uvicorn_config(self.app, self.verbose))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="handsdk-serve-uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise HandSDKError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
        if self.sock is not None:
            self.sock.close()
        self.app.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(config: Any = None, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          verbose: bool = False) -> int:
    """What ``handsdk serve`` runs: check the config, listen, serve until Ctrl+C."""
    app = ServeApp(config, limits)
    app.check()
    sock = bind(host, port)
    url = url_of(sock)
    print(f"handsdk serve: open {url} in a browser (Ctrl+C stops)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("note: browsers give the camera only to https pages and to localhost; from another "
              "machine the page's file mode works, the camera needs https (e.g. a TLS proxy)", flush=True)
    try:
        uvicorn.Server(uvicorn_config(app, verbose)).run(sockets=[sock])
    except KeyboardInterrupt as exc:  # Ctrl+C / SIGTERM is how a server is meant to stop: exit 0
        name = signal.Signals(getattr(exc, "signum", signal.SIGINT)).name
        print(f"handsdk serve: stopped ({name})", file=sys.stderr, flush=True)
    finally:
        sock.close()
        app.close()
    return 0
