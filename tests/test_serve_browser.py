"""``handsdk serve``'s page in a real browser: headless Chromium (the system's, driven by
Playwright) whose fake camera plays the shared ASL clip, converted to y4m here. The page must get
results with 21 landmarks for most frames, show gesture and letter labels, switch consumers,
track a dropped file, and load nothing from anywhere but the server.

Skips, saying why, without Chromium (``apt-get install chromium``; .ci/run installs it), without
Playwright (``handsdk[dev]``) or without the shared clip."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="handsdk[serve] is not installed")

from handsdk_serve.browser import chromium_page, clip_frames, find_chromium, wait_for, write_y4m  # noqa: E402
from handsdk_serve.server import BackgroundServer, ServeApp  # noqa: E402

CAMERA_FRAMES = 100  # 4 s at 25 FPS, looped by Chromium


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium installed (apt-get install chromium): the page's browser test needs one")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install 'handsdk[dev]')")
    return path


@pytest.fixture(scope="module")
def camera(asl_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 100 frames of the ASL clip as the fake camera's y4m, 640x480."""
    return write_y4m(clip_frames(asl_clip, CAMERA_FRAMES, (640, 480)), tmp_path_factory.mktemp("cam") / "asl.y4m")


def page_stats(page: Any) -> dict[str, Any]:
    return page.evaluate("Object.assign({}, window.handsdkStats, {rtt: window.handsdkStats.rtt.length,"
                         " lastResult: undefined, hello: undefined})")


def test_the_page_tracks_the_camera_switches_consumers_and_tracks_a_file(
        chromium: str, camera: Path, asl_clip: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    short = tmp_path / "asl_short.webm"  # a file for the file mode, in a format Chromium plays
    writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"VP80"), 25.0, (320, 240))
    for frame in clip_frames(asl_clip, 25, (320, 240)):
        writer.write(frame)
    writer.release()

    app = ServeApp()
    with BackgroundServer(app) as server:
        with chromium_page(camera, chromium) as page:
            page.goto(server.url + "?mirror=0")
            wait_for(page, "window.handsdkStats.frames >= 60", 45, "60 results from the camera")
            s = page_stats(page)
            assert s["connected"] and s["size"] == [640, 480] and not s["errors"], s
            assert s["withHands"] >= 0.8 * s["frames"], s  # the hand is in every frame of the clip
            assert s["hands"] >= s["withHands"] and s["hands21"] == s["hands"], s  # 21 landmarks each
            assert s["labels"].get("gesture") and s["labels"].get("sign"), s["labels"]
            assert s["rttP50"] > 0 and s["meanFps"] > 1, s
            # what a person sees: the numbers and the speller panel filled in
            assert float(page.inner_text("#fps")) > 0
            assert page.inner_text("#current") != "–" or s["withHands"] < s["frames"]
            assert "ASL letters" in page.inner_text("#spell-note")
            shot = tmp_path / "serve.png"
            page.locator("body").screenshot(path=str(shot))
            image = cv2.imread(str(shot))
            assert image is not None and image.shape[1] >= 900 and float(np.std(image)) > 20

            # switch consumers from the page: gestures off, digits on
            page.uncheck("#consumers input[value=gestures]")
            page.check("#consumers input[value=digits]")
            wait_for(page, "JSON.stringify(window.handsdkStats.config.consumers) === "
                           "'[\"asl_letters\",\"digits\"]'", 20, "the server to switch consumers")
            page.evaluate("window.handsdkResetStats()")
            wait_for(page, "window.handsdkStats.withHands >= 10", 30, "10 results after the switch")
            labels = page_stats(page)["labels"]
            assert set(labels) == {"sign", "digit"}, labels

            # file mode: choose a video, get it tracked, get the jsonl
            page.check("input[name=mode][value=file]")
            page.set_input_files("#file", str(short))
            wait_for(page, "window.handsdkStats.file && (window.handsdkStats.file.done || "
                           "window.handsdkStats.file.error)", 60, "the file to be tracked")
            f = page_stats(page)["file"]
            assert f["done"] and f["frames"] == 25 and f["withHands"] >= 20, f
            href = page.get_attribute("#download", "href")
            assert page.is_visible("#download") and href.startswith("blob:")
            lines = page.evaluate("fetch(document.querySelector('#download').href).then(r => r.text())")
            assert len(lines.splitlines()) == 25

            origin = server.url.rstrip("/")
            foreign = [u for u in page.handsdk_requests if not u.startswith((origin, "blob:", "data:"))]
            assert not foreign, foreign  # no CDN: every file came from handsdk serve
            errors = [m for m in page.handsdk_console if m.startswith(("error", "pageerror"))]
            assert not errors, errors
        # the browser is gone: its connection and tracker with it
        deadline = time.monotonic() + 10
        while (app.clients or app.open_trackers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.clients == 0 and app.open_trackers == 0, app.info()
    assert time.monotonic() - t0 < 90


def test_a_box_ticked_while_the_server_switches_stays_ticked(chromium: str, camera: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The server answers a consumer change once its new tracker is built. The answer to an earlier
    change must not untick a box ticked since (a CI run failed on it: Playwright saw its click undone)."""
    build = ServeApp.new_tracker

    def slow_build(self: ServeApp, *args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)
        return build(self, *args, **kwargs)

    monkeypatch.setattr(ServeApp, "new_tracker", slow_build)
    digits, gestures = "#consumers input[value=digits]", "#consumers input[value=gestures]"
    with BackgroundServer(ServeApp()) as server, chromium_page(camera, chromium) as page:
        page.goto(server.url + "?mirror=0")
        wait_for(page, "window.handsdkStats.frames >= 5", 45, "5 results")
        page.uncheck(gestures)
        page.check(digits)
        wait_for(page, "window.handsdkStats.config.consumers.length === 1", 20, "the first change's answer")
        assert page.is_checked(digits) and not page.is_checked(gestures)
        wait_for(page, "JSON.stringify(window.handsdkStats.config.consumers) === "
                       "'[\"asl_letters\",\"digits\"]'", 20, "the second change's answer")
        assert page.is_checked(digits) and not page.is_checked(gestures)


def test_the_page_with_a_config_that_swaps_the_backend(chromium: str, camera: Path, tmp_path: Path,
                                                       bundled_models: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="handsdk[tflite] is not installed")
    config = tmp_path / "handsdk.toml"
    config.write_text('[backend]\nname = "tflite"\n\n[filter]\nname = "kalman"\n')
    with BackgroundServer(ServeApp(str(config))) as server, chromium_page(camera, chromium) as page:
        page.goto(server.url + "?size=320")
        wait_for(page, "window.handsdkStats.frames >= 25", 45, "25 results")
        s = page_stats(page)
        hello = page.evaluate("window.handsdkStats.hello")
    assert hello["backend"] == "tflite" and hello["filter"] == "kalman"
    assert s["size"] == [320, 240] and s["withHands"] >= 0.8 * s["frames"] and s["hands21"] == s["hands"], s
    assert page.handsdk_console == [] or not any(m.startswith("pageerror") for m in page.handsdk_console)
