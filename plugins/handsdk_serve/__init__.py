"""``handsdk serve``: a live browser demo. A page (plain HTML and JavaScript, served by handsdk
itself: no CDN, no build step) takes the webcam, sends its frames over a WebSocket, and draws
the landmarks, skeleton, track ids, gesture and sign labels that come back, with FPS and
round-trip latency; a fingerspelling panel spells with :class:`handsdk_signs.Speller`. The page
also tracks a dropped video or photo and hands back its results as JSON lines.

    pip install 'handsdk[serve]'
    handsdk serve                                   # http://127.0.0.1:8000/
    handsdk serve --config handsdk.toml --port 8080 --max-clients 4

The web stack (Starlette, uvicorn, websockets) is an optional extra, imported only when the
command runs: without it ``handsdk plugins`` and every other command work as before, and
``handsdk serve`` says which extra to install. In code::

    from handsdk_serve.server import BackgroundServer, ServeApp
    with BackgroundServer(ServeApp("handsdk.toml")) as server:
        print(server.url)

The server, its options, messages and limits: docs/serve.md; the page: ``static/``.
"""

from __future__ import annotations

from typing import Any

from handsdk.hookspecs import hookimpl
from handsdk.script import positive_int

EXTRA = "serve"


def _web_stack() -> None:
    """Import the optional web stack, or raise a MissingDependencyError naming ``handsdk[serve]``."""
    from handsdk.plugins import import_optional

    for module in ("starlette", "uvicorn", "websockets"):
        import_optional(module, EXTRA)


def _positive_number(text: str) -> float:
    """An argparse ``type``: a number > 0 (megabytes, seconds)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


@hookimpl
def handsdk_register_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="live browser demo: webcam -> tracker -> overlay, gestures, "
                                            "fingerspelling (needs handsdk[serve])",
                              description="Serve a page that tracks the webcam (or a dropped video or "
                                          "photo) in the browser. Listens on 127.0.0.1 unless --host "
                                          "says otherwise. docs/serve.md has the details.")
    p.add_argument("--config", help="a handsdk config (TOML): backend, models, tracker, filter, and the "
                                    "options of gesture_recognizer / sign_classifier")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
                                                      "machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-clients", type=positive_int, default=8,
                   help="most browsers tracked at once (open pages plus file uploads); more are "
                        "refused with WebSocket close code 1013 (default 8)")
    p.add_argument("--max-frame-mb", type=_positive_number, default=2.0,
                   help="largest frame message in MiB (default 2)")
    p.add_argument("--max-side", type=positive_int, default=1920,
                   help="largest frame side in pixels (default 1920)")
    p.add_argument("--max-upload-mb", type=_positive_number, default=200.0,
                   help="largest uploaded video or photo in MiB (default 200)")
    p.add_argument("--idle-timeout", type=_positive_number, default=60.0,
                   help="close a connection that sends nothing for this many seconds (default 60)")

    def run(args: Any) -> int:
        import logging

        _web_stack()
        from .server import Limits, serve

        logging.getLogger("handsdk_serve").setLevel(logging.DEBUG if args.verbose else logging.INFO)
        limits = Limits(max_clients=args.max_clients, max_frame_bytes=int(args.max_frame_mb * 2**20),
                        max_side=args.max_side, max_upload_bytes=int(args.max_upload_mb * 2**20),
                        idle_timeout_s=args.idle_timeout)
        return serve(args.config, args.host, args.port, limits, verbose=args.verbose)

    p.set_defaults(func=run)
