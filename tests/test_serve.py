"""``handsdk serve`` without a browser: a real server (uvicorn on 127.0.0.1, an ephemeral port)
and real WebSocket / HTTP clients. Frames, bad input, limits, 20 clients at once, file uploads,
the command itself, and that no Tracker or thread outlives its client.
(The page in headless Chromium: tests/test_serve_browser.py.)"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from handsdk import hookimpl
from handsdk.synthetic import synthetic_clip

pytest.importorskip("starlette", reason="handsdk[serve] is not installed")
websockets = pytest.importorskip("websockets", reason="handsdk[serve] is not installed")

from handsdk_serve import protocol as P  # noqa: E402
from handsdk_serve.server import BackgroundServer, Limits, ServeApp  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Rendered frames with one hand (no data needed), 320x240."""
    return [f.image for f in synthetic_clip(8, (320, 240), seed=3)]


@pytest.fixture(scope="module")
def jpegs(frames: list[np.ndarray]) -> list[bytes]:
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for f in frames]


@pytest.fixture
def tracker_count(register_plugin: Any) -> dict[str, int]:
    """Trackers started and closed in this process, counted by the tracker hooks themselves."""
    count = {"started": 0, "closed": 0}

    class Counter:
        @hookimpl
        def handsdk_on_tracker_start(self, tracker):
            count["started"] += 1

        @hookimpl
        def handsdk_on_tracker_close(self, tracker):
            count["closed"] += 1

    register_plugin(Counter(), "test-serve-tracker-count")
    return count


def ws_url(server: BackgroundServer) -> str:
    return server.url.replace("http://", "ws://") + "ws"


async def recv_json(ws: Any, timeout: float = 30) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def serve_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("handsdk-serve"))


# -- the protocol ------------------------------------------------------------------------------
def test_frame_header_round_trip_and_image_sizes(jpegs: list[bytes], frames: list[np.ndarray]) -> None:
    frame = P.parse_frame(P.encode_frame(jpegs[0], 7, 1234.5), 1 << 20, 1920)
    assert (frame.id, frame.timestamp_ms, frame.format, frame.width, frame.height) == (7, 1234.5, "jpeg", 320, 240)
    assert frame.image == jpegs[0]
    progressive = cv2.imencode(".jpg", frames[0], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert P.image_size(progressive) == ("jpeg", 320, 240)
    png = cv2.imencode(".png", frames[0][:100, :50])[1].tobytes()
    assert P.image_size(png) == ("png", 50, 100)


@pytest.mark.parametrize(("data", "code"), [
    (b"", P.BAD_FRAME),
    (b"GIF89a" + bytes(40), P.BAD_FRAME),  # no header
    (P.encode_frame(b"GIF89a" + bytes(40), 1, 0.0), P.NOT_IMAGE),
    (P.encode_frame(b"", 1, 0.0), P.NOT_IMAGE),
    (P.encode_frame(b"\xff\xd8\xff" + bytes(20), 1, 0.0), P.BAD_IMAGE),  # a JPEG with no size
    (P.encode_frame(b"\x89PNG\r\n\x1a\n" + bytes(4), 1, 0.0), P.BAD_IMAGE),
    (P.encode_frame(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 5000, 10), 1, 0.0), P.TOO_LARGE),
    (P.encode_frame(b"\xff\xd8\xff" + bytes(5000), 1, 0.0), P.TOO_LARGE),  # over max_bytes
    (P.encode_frame(b"\xff\xd8\xff", 1, float("nan")), P.BAD_FRAME),
])
def test_bad_frames_are_refused_with_a_code(data: bytes, code: str) -> None:
    with pytest.raises(P.FrameRejected) as err:
        P.parse_frame(data, 4096, 1920)
    assert err.value.code == code, err.value


def test_limits_are_checked() -> None:
    from handsdk.errors import ConfigError

    with pytest.raises(ConfigError, match="max_clients"):
        Limits(max_clients=0)
    with pytest.raises(ConfigError, match="idle_timeout_s"):
        Limits(idle_timeout_s=float("nan"))


def test_page_choices_and_config_consumers(caplog: pytest.LogCaptureFixture) -> None:
    from handsdk.errors import ConfigError

    with caplog.at_level(logging.WARNING, logger="handsdk_serve"):
        app = ServeApp({"consumers": [{"name": "sign_classifier", "vocabulary": "digits", "min_frames": 3},
                                      {"name": "jsonl", "path": "x.jsonl"}]})
    try:
        assert app.default_choices == ("digits",)  # the config's classifier, its options kept
        assert "leaves out the config's consumer 'jsonl'" in caplog.text  # writers would share one file
        cfg = app.tracker_config(("gestures", "digits"), "kalman")
        assert [(c.name, c.options) for c in cfg.consumers] == [
            ("gesture_recognizer", {"key": "gesture"}),
            ("sign_classifier", {"min_frames": 3, "vocabulary": "digits", "key": "digit"})]
        assert cfg.filter.name == "kalman"
        with pytest.raises(ConfigError, match="valid: gestures, asl_letters, digits"):
            app.selection(["letters"])
        with pytest.raises(ConfigError, match="unknown filter 'smooth'"):
            app.selection(None, "smooth")
    finally:
        app.close()


# -- live tracking over the WebSocket ----------------------------------------------------------
def test_frames_get_results_and_bad_input_gets_errors(jpegs: list[bytes], tracker_count: dict[str, int],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    limits = Limits(max_frame_bytes=64 * 1024, max_side=640)
    caplog.set_level(logging.INFO, logger="handsdk_serve")
    with BackgroundServer(ServeApp(limits=limits)) as server:
        async def session() -> dict[str, Any]:
            out: dict[str, Any] = {"results": [], "errors": []}
            async with websockets.connect(ws_url(server), max_size=None) as ws:
                out["hello"] = await recv_json(ws)
                for i, jpg in enumerate(jpegs[:4]):
                    await ws.send(P.encode_frame(jpg, i, 40.0 * i))
                    out["results"].append(await recv_json(ws))
                bad = [
                    b"not a frame",  # binary, no header
                    "{not json",  # text, not JSON
                    json.dumps({"type": "dance"}),
                    json.dumps({"type": "config", "consumers": ["nope"]}),
                    P.encode_frame(b"GIF89a" + bytes(100), 50, 500.0),  # not a JPEG / PNG
                    P.encode_frame(jpegs[0][:400], 51, 520.0),  # truncated: does not decode
                    P.encode_frame(jpegs[0] + bytes(70 * 1024), 52, 540.0),  # over max_frame_bytes
                    P.encode_frame(cv2.imencode(".png", np.zeros((700, 10, 3), np.uint8))[1].tobytes(), 53, 560.0),
                ]
                for msg in bad:
                    await ws.send(msg)
                    out["errors"].append(await recv_json(ws))
                # the connection still works, and can switch consumers and filter
                await ws.send(json.dumps({"type": "config", "consumers": ["digits"], "filter": "kalman"}))
                out["config"] = await recv_json(ws)
                await ws.send(P.encode_frame(jpegs[4], 60, 600.0))
                out["after"] = await recv_json(ws)
                await ws.send(json.dumps({"type": "reset"}))
                out["reset"] = await recv_json(ws)
            return out

        out = asyncio.run(session())
        assert wait_until(lambda: server.app.clients == 0 and server.app.open_trackers == 0)
    hello = out["hello"]
    assert hello["type"] == "hello" and hello["consumers"] == ["gestures", "asl_letters"]
    assert hello["filter"] == "one_euro" and len(hello["connections"]) == 21
    for i, r in enumerate(out["results"]):
        assert r["type"] == "result" and r["id"] == i and r["t"] == 40.0 * i
        assert r["result"]["image_size"] == [320, 240]
        assert r["result"]["hands"], f"no hand in rendered frame {i}"
        for hand in r["result"]["hands"]:
            assert len(hand["landmarks"]) == 21 and len(hand["landmarks"][0]) == 3
            assert {"gesture", "sign"} <= set(hand["labels"])
        assert r["server_ms"]["track"] > 0 and r["speller"]["text"] == ""
    assert [(e["type"], e["code"], e["id"]) for e in out["errors"]] == [
        ("error", P.BAD_FRAME, None), ("error", P.BAD_MESSAGE, None), ("error", P.BAD_MESSAGE, None),
        ("error", P.BAD_CONFIG, None), ("error", P.NOT_IMAGE, 50), ("error", P.BAD_IMAGE, 51),
        ("error", P.TOO_LARGE, 52), ("error", P.TOO_LARGE, 53)]
    assert "640 px" in out["errors"][-1]["message"]
    assert out["config"] == {"type": "config", "consumers": ["digits"], "filter": "kalman", "spell_from": "digit"}
    assert out["after"]["type"] == "result" and out["after"]["id"] == 60
    assert all(set(h["labels"]) == {"digit"} for h in out["after"]["result"]["hands"])
    assert out["reset"] == {"type": "reset"}
    # one log line per bad input, and one when the client closed
    warnings = [r for r in caplog.records if r.name == "handsdk_serve" and r.levelno == logging.WARNING]
    assert len(warnings) == len(out["errors"])
    closed = [r.getMessage() for r in caplog.records if "closed (" in r.getMessage()]
    assert len(closed) == 1 and "5 frames" in closed[0]
    # the first tracker and the one the config message put in its place, both closed
    assert tracker_count["started"] == tracker_count["closed"] == 2


def test_a_message_over_the_websocket_limit_closes_that_connection_only(jpegs: list[bytes]) -> None:
    limits = Limits(max_frame_bytes=64 * 1024)  # the WebSocket layer cuts at 4x: 1 MiB here
    with BackgroundServer(ServeApp(limits=limits)) as server:
        async def session() -> tuple[int | None, dict[str, Any]]:
            async with websockets.connect(ws_url(server)) as other:
                await recv_json(other)
                async with websockets.connect(ws_url(server), max_size=None) as ws:
                    await recv_json(ws)
                    # the server may close while the 2 MiB are still going out: then send() raises
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await ws.send(P.encode_frame(b"\xff\xd8\xff" + bytes(2 << 20), 1, 0.0))
                        await asyncio.wait_for(ws.recv(), 30)
                    code = closed.value.rcvd.code if closed.value.rcvd else None
                await other.send(P.encode_frame(jpegs[0], 1, 0.0))
                return code, await recv_json(other)

        code, result = asyncio.run(session())
        assert code == 1009  # "message too big", a clean close
        assert result["type"] == "result"
        assert wait_until(lambda: server.app.clients == 0 and server.app.open_trackers == 0)


def test_a_client_leaving_mid_frame_leaks_nothing(jpegs: list[bytes], tracker_count: dict[str, int],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="handsdk_serve")
    big = cv2.imencode(".jpg", cv2.resize(cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR),
                                          (1280, 960)))[1].tobytes()
    with BackgroundServer(ServeApp()) as server:
        async def leave(n: int) -> None:
            for i in range(n):
                ws = await websockets.connect(ws_url(server))
                await recv_json(ws)
                await ws.send(P.encode_frame(big, i, 0.0))
                ws.transport.abort()  # gone without a close handshake, the frame still being tracked

        asyncio.run(leave(3))
        assert wait_until(lambda: server.app.clients == 0 and server.app.open_trackers == 0), server.app.info()

        async def still_serves() -> dict[str, Any]:
            async with websockets.connect(ws_url(server)) as ws:
                await recv_json(ws)
                await ws.send(P.encode_frame(jpegs[1], 1, 0.0))
                return await recv_json(ws)

        assert asyncio.run(still_serves())["type"] == "result"
    assert tracker_count["started"] == tracker_count["closed"] == 4  # 3 left, 1 stayed
    closed = [r.getMessage() for r in caplog.records if "closed (" in r.getMessage()]
    assert len(closed) == 4


def test_twenty_clients_at_once(jpegs: list[bytes], tracker_count: dict[str, int],
                                caplog: pytest.LogCaptureFixture) -> None:
    """20 connect at once with --max-clients 12: 12 are served (each its own tracker, results
    for each of its frames), 8 are closed with 1013 and a reason; nothing is left afterwards,
    not a tracker, not a thread."""
    before = serve_threads()
    caplog.set_level(logging.INFO, logger="handsdk_serve")
    app = ServeApp(limits=Limits(max_clients=12))
    with BackgroundServer(app) as server:
        async def client(k: int, go: asyncio.Event) -> tuple[str, Any]:
            async with websockets.connect(ws_url(server), open_timeout=30) as ws:
                try:
                    first = await recv_json(ws, 60)
                except websockets.ConnectionClosed as exc:
                    return "refused", (exc.rcvd.code, exc.rcvd.reason)
                await go.wait()  # every accepted client holds its slot until all have connected
                ids = []
                for i in range(3):
                    await ws.send(P.encode_frame(jpegs[(k + i) % len(jpegs)], i, 40.0 * i))
                    r = await recv_json(ws, 60)
                    assert r["type"] == "result", r
                    ids.append((r["id"], len(r["result"]["hands"])))
                return first["type"], ids

        async def crowd() -> list[tuple[str, Any]]:
            go = asyncio.Event()
            tasks = [asyncio.create_task(client(k, go)) for k in range(20)]
            deadline = time.monotonic() + 60
            while sum(t.done() for t in tasks) < 8 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the refused ones finish first
            go.set()
            return await asyncio.gather(*tasks)

        out = asyncio.run(crowd())
        served = [ids for kind, ids in out if kind == "hello"]
        refused = [why for kind, why in out if kind == "refused"]
        assert len(served) == 12 and len(refused) == 8
        assert all(ids == [(0, 1), (1, 1), (2, 1)] for ids in served), served
        assert all(code == P.CLOSE_BUSY and "--max-clients 12" in reason for code, reason in refused)
        assert wait_until(lambda: app.clients == 0 and app.open_trackers == 0), app.info()
        assert len(serve_threads()) <= 12 + 1 + len(before)  # the pool, uvicorn's thread
    assert serve_threads() == before
    assert tracker_count["started"] == tracker_count["closed"] == 12
    refusals = [r for r in caplog.records if "server busy" in r.getMessage()]
    assert len(refusals) == 8


def test_idle_connections_are_closed_and_other_sites_refused() -> None:
    with BackgroundServer(ServeApp(limits=Limits(idle_timeout_s=0.5))) as server:
        async def idle() -> tuple[int, str]:
            async with websockets.connect(ws_url(server)) as ws:
                await recv_json(ws)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
                return closed.value.rcvd.code, closed.value.rcvd.reason

        async def other_site() -> None:
            async with websockets.connect(ws_url(server), origin="http://example.com"):
                pass

        async def same_site() -> str:
            host = server.url.split("//")[1].rstrip("/")
            async with websockets.connect(ws_url(server), origin=f"http://{host}") as ws:
                return (await recv_json(ws))["type"]

        assert asyncio.run(idle()) == (P.CLOSE_IDLE, "no message for 0.5 s")
        with pytest.raises(websockets.InvalidStatus, match="403"):
            asyncio.run(other_site())
        assert asyncio.run(same_site()) == "hello"
        assert wait_until(lambda: server.app.clients == 0 and server.app.open_trackers == 0)


# -- file mode ---------------------------------------------------------------------------------
def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """(status, headers (case-insensitive), body) of a POST."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def declared_too_large(server: BackgroundServer) -> tuple[int, Any, bytes]:
    """A POST declaring 5 MiB: the server answers 413 before any of it is sent."""
    import http.client

    host, port = server.sock.getsockname()[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.putrequest("POST", "/api/track?name=a.mp4")
        conn.putheader("Content-Length", str(5 << 20))
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def post_chunked(server: BackgroundServer, path: str, chunks: list[bytes]) -> tuple[int, Any, bytes]:
    """A POST of unknown length (chunked): the server counts what arrives."""
    import http.client

    host, port = server.sock.getsockname()[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", path, body=iter(chunks), encode_chunked=True)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def test_a_video_and_a_photo_are_tracked_to_jsonl(frames: list[np.ndarray], jpegs: list[bytes],
                                                  tmp_path: Path, tracker_count: dict[str, int]) -> None:
    from handsdk.types import FrameResult

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for f in frames:
        writer.write(f)
    writer.release()
    with BackgroundServer(ServeApp(limits=Limits(max_upload_bytes=4 << 20, max_clients=2))) as server:
        status, headers, body = post(server.url + "api/track?name=my%20clip.avi&consumers=gestures", video.read_bytes())
        assert status == 200, body
        assert headers["X-Handsdk-Frames"] == str(len(frames))
        assert 'filename="my_clip.jsonl"' in headers["Content-Disposition"]
        results = [FrameResult.from_dict(json.loads(line)) for line in body.decode().splitlines()]
        assert [r.frame_index for r in results] == list(range(len(frames)))
        assert [r.timestamp_ms for r in results] == pytest.approx([40.0 * i for i in range(len(frames))])
        assert sum(bool(r.hands) for r in results) >= len(frames) - 1
        assert all(set(h.labels) == {"gesture"} for r in results for h in r.hands)

        status, _, body = post(server.url + "api/track?name=hand.jpg&consumers=asl_letters,digits", jpegs[0])
        assert status == 200
        (photo,) = [json.loads(line) for line in body.decode().splitlines()]
        assert photo["image_size"] == [320, 240] and len(photo["hands"]) == 1
        assert set(photo["hands"][0]["labels"]) == {"sign", "digit"}

        refused = {
            "suffix": post(server.url + "api/track?name=notes.txt", b"hello"),
            "empty": post(server.url + "api/track?name=a.mp4", b""),
            "garbage": post(server.url + "api/track?name=a.mp4", b"\x00" * 5000),
            "too large": declared_too_large(server),
            "grew too large": post_chunked(server, "/api/track?name=a.mp4", [bytes(1 << 20)] * 4 + [bytes(1024)]),
            "consumer": post(server.url + "api/track?name=a.jpg&consumers=letters", jpegs[0]),
            "origin": post(server.url + "api/track?name=a.jpg", jpegs[0], {"Origin": "http://example.com"}),
        }
        statuses = {k: v[0] for k, v in refused.items()}
        assert statuses == {"suffix": 415, "empty": 400, "garbage": 422, "too large": 413, "grew too large": 413,
                            "consumer": 400, "origin": 403}
        assert "cannot be read" in json.loads(refused["garbage"][2])["error"]
        assert "a.mp4" in json.loads(refused["garbage"][2])["error"]  # the name given, not the temp file
        assert wait_until(lambda: server.app.clients == 0 and server.app.open_trackers == 0), server.app.info()
    assert tracker_count["started"] == tracker_count["closed"]


def test_an_upload_abandoned_mid_stream_is_cleaned_up(frames: list[np.ndarray], tmp_path: Path,
                                                      tracker_count: dict[str, int]) -> None:
    import socket
    import tempfile

    video = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for i in range(150):
        writer.write(frames[i % len(frames)])
    writer.release()
    uploads = lambda: sorted(Path(tempfile.gettempdir()).glob("handsdk-serve-*"))  # noqa: E731
    before = uploads()
    with BackgroundServer(ServeApp()) as server:
        host, port = server.sock.getsockname()[:2]
        body = video.read_bytes()
        with socket.create_connection((host, port)) as s:
            s.sendall(f"POST /api/track?name=long.avi HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")  # tracking has begun
        assert wait_until(lambda: server.app.clients == 0 and server.app.open_trackers == 0), server.app.info()
        assert uploads() == before
    assert tracker_count["started"] == tracker_count["closed"]


# -- other backends, the command ---------------------------------------------------------------
@pytest.mark.parametrize("backend", ["torch", "tflite"])
def test_a_config_that_swaps_the_backend(backend: str, jpegs: list[bytes], tmp_path: Path,
                                         bundled_models: Path) -> None:
    pytest.importorskip({"torch": "torch", "tflite": "ai_edge_litert"}[backend],
                        reason=f"handsdk[{backend}] is not installed")
    config = tmp_path / "handsdk.toml"
    config.write_text(f'[backend]\nname = "{backend}"\n\n[[consumers]]\nname = "gesture_recognizer"\n')
    with BackgroundServer(ServeApp(str(config))) as server:
        async def session() -> tuple[dict[str, Any], dict[str, Any]]:
            async with websockets.connect(ws_url(server)) as ws:
                hello = await recv_json(ws)
                await ws.send(P.encode_frame(jpegs[0], 1, 0.0))
                return hello, await recv_json(ws)

        hello, result = asyncio.run(session())
    assert hello["backend"] == backend and hello["consumers"] == ["gestures"]
    assert len(result["result"]["hands"]) == 1
    assert len(result["result"]["hands"][0]["landmarks"]) == 21


def test_the_serve_command_listens_serves_and_stops(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "handsdk", "serve", "--port", "0", "--max-clients", "2"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("handsdk serve: open http://127.0.0.1:"), (line, proc.stderr.read())
        url = line.split("open ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as resp:
            page = resp.read().decode()
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert '<script src="/static/app.js"' in page
        for name in ("app.js", "style.css"):
            with urllib.request.urlopen(url + "static/" + name, timeout=30) as resp:
                assert resp.status == 200 and len(resp.read()) > 500
        with urllib.request.urlopen(url + "api/info", timeout=30) as resp:
            info = json.loads(resp.read())
        assert info["limits"]["max_clients"] == 2 and info["open_trackers"] == 0
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C is how a server stops: shut down, one line, exit 0
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1] == "handsdk serve: stopped (SIGINT)"


def test_the_serve_command_refuses_a_bad_config_before_listening(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[backend]\nname = "quantum"\n')
    proc = subprocess.run([sys.executable, "-m", "handsdk", "serve", "--config", str(bad), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "quantum" in proc.stderr
    assert "open http" not in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "handsdk", "serve", "--max-clients", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--max-clients" in proc.stderr


def test_without_the_serve_extra_only_serve_says_what_to_install(run_python: Any) -> None:
    code = (
        "import sys, json, contextlib, io\n"
        "for m in ('starlette', 'uvicorn', 'websockets'):\n"
        "    sys.modules[m] = None  # as if handsdk[serve] were not installed\n"
        "from handsdk.cli import main\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "    listed = main(['plugins'])\n"
        "    served = main(['serve', '--port', '0'])\n"
        "print(json.dumps([listed, served, out.getvalue(), err.getvalue()]))\n"
    )
    listed, served, out, err = run_python(code, json=True)
    assert listed == 0 and "serve" in out and "FAILED" not in out
    assert served == 2 and "pip install 'handsdk[serve]'" in err


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """No CDN: every URL in the page's files is this server's own."""
    import re

    static = REPO / "plugins" / "handsdk_serve" / "static"
    assert sorted(p.name for p in static.iterdir()) == ["app.js", "index.html", "style.css"]
    for path in static.iterdir():
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
