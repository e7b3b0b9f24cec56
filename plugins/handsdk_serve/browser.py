"""Drive the page in headless Chromium with a fake camera that plays a clip: the harness of the
browser test (tests/test_serve_browser.py) and the benchmark (scripts/bench_serve.py).

Chromium is the system's (Debian's ``chromium`` package: ``apt-get install chromium``), driven
by Playwright's Python API (``handsdk[dev]``); nothing is downloaded (never ``playwright
install``). The fake camera plays a YUV4MPEG2 file, which :func:`write_y4m` writes from BGR
frames (no ffmpeg needed); Chromium loops it at the file's frame rate.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handsdk.errors import HandSDKError


def find_chromium() -> str | None:
    """The system's Chromium (or Chrome), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def write_y4m(frames: Iterable[np.ndarray], path: str | Path, fps: int = 25) -> Path:
    """Write BGR frames (all one even size) as a YUV4MPEG2 file (I420), which Chromium's fake
    camera plays with ``--use-file-for-fake-video-capture``."""
    path = Path(path)
    n = 0
    with path.open("wb") as f:
        for frame in frames:
            h, w = frame.shape[:2]
            if n == 0:
                if w % 2 or h % 2:
                    raise ValueError(f"y4m I420 frames need an even size, got {w}x{h}")
                f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
                size = (w, h)
            elif (w, h) != size:
                raise ValueError(f"frame {n} is {w}x{h}, the first was {size[0]}x{size[1]}")
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
            n += 1
    if n == 0:
        raise ValueError("no frames to write")
    return path


def clip_frames(video: str | Path, n: int, size: tuple[int, int] = (640, 480),
                centre_y: float = 0.42) -> Iterator[np.ndarray]:
    """The first ``n`` frames of ``video``, cropped to the aspect of ``size`` around the height
    ``centre_y`` (a fraction; the ASL clip is portrait, its hand a little above the middle) and
    resized to ``size``."""
    cap = cv2.VideoCapture(str(video))
    try:
        for _ in range(n):
            ok, frame = cap.read()
            if not ok:
                return
            h, w = frame.shape[:2]
            aspect = size[0] / size[1]
            if w / h < aspect:  # too tall: keep the full width
                ch = int(round(w / aspect))
                y0 = int(np.clip(centre_y * h - ch / 2, 0, h - ch))
                frame = frame[y0:y0 + ch]
            else:
                cw = int(round(h * aspect))
                x0 = (w - cw) // 2
                frame = frame[:, x0:x0 + cw]
            yield cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    finally:
        cap.release()


def fake_camera_args(y4m: str | Path) -> list[str]:
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}", "--autoplay-policy=no-user-gesture-required",
            "--no-sandbox", "--disable-gpu", "--mute-audio"]


@contextmanager
def chromium_page(y4m: str | Path, chromium: str | None = None,
                  viewport: tuple[int, int] = (1000, 640)) -> Iterator[Any]:
    """A Playwright page in headless Chromium whose camera plays ``y4m``; requests and console
    messages it makes are collected in ``page.handsdk_requests`` / ``page.handsdk_console``."""
    from playwright.sync_api import sync_playwright

    executable = chromium or find_chromium()
    if executable is None:
        raise HandSDKError("no Chromium found: install it (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=fake_camera_args(y4m))
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.handsdk_requests = []
            page.handsdk_console = []
            page.on("request", lambda r: page.handsdk_requests.append(r.url))
            page.on("console", lambda m: page.handsdk_console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: page.handsdk_console.append(f"pageerror: {e}"))
            yield page
        finally:
            browser.close()


def wait_for(page: Any, expression: str, timeout_s: float, what: str) -> Any:
    """Poll a JavaScript expression until it is truthy; raise naming ``what`` on a timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            stats = page.evaluate("JSON.stringify(Object.assign({}, window.handsdkStats || {}, {rtt: undefined,"
                                  " lastResult: undefined, hello: undefined}))")
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}; page stats: {stats}; "
                               f"console: {getattr(page, 'handsdk_console', [])[-5:]}")
        time.sleep(0.1)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (as the page computes it)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(np.ceil(p / 100 * len(s))) - 1))]
