"""The wire format of ``handsdk serve``'s WebSocket, and the checks a frame passes before it is
decoded. Plain Python (no web stack), so clients and tests can use it too.

A frame is one binary message: a 16-byte header, then a JPEG or PNG image::

    offset 0   4 bytes   b"HSF1"                (magic: "handsdk frame", version 1)
    offset 4   uint32    frame id, little-endian (echoed in the result)
    offset 8   float64   timestamp in ms, little-endian (the capture time; the tracker's clock)
    offset 16  ...       the image

Everything else the client sends is a JSON text message (``{"type": "config", ...}``,
``{"type": "reset"}``). docs/serve.md lists every message.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from handsdk.errors import HandSDKError

MAGIC = b"HSF1"
HEADER = struct.Struct("<4sId")  # magic, frame id, timestamp_ms: 16 bytes

# error codes in {"type": "error", "code": ...} messages
TOO_LARGE = "too_large"  # the message or the image's pixel size is over the server's limit
BAD_FRAME = "bad_frame"  # a binary message without the frame header
NOT_IMAGE = "not_image"  # a frame whose payload is not a JPEG or PNG
BAD_IMAGE = "bad_image"  # a JPEG / PNG that does not decode
BAD_MESSAGE = "bad_message"  # a text message that is not a known JSON message
BAD_CONFIG = "bad_config"  # a config message the server refused (the tracker is unchanged)
TRACKER_ERROR = "tracker_error"  # the tracker failed on this frame

# WebSocket close codes the server uses
CLOSE_BUSY = 1013  # "try again later": --max-clients connections are open
CLOSE_POLICY = 1008  # a page from another origin
CLOSE_IDLE = 1000  # no message for --idle-timeout seconds
CLOSE_ERROR = 1011  # the tracker could not be built


class FrameRejected(HandSDKError):
    """A frame message the server will not track; ``code`` is one of the codes above."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Frame:
    id: int
    timestamp_ms: float
    image: bytes
    format: str  # "jpeg" or "png"
    width: int
    height: int


def encode_frame(image: bytes, frame_id: int, timestamp_ms: float) -> bytes:
    """A frame message: the header, then ``image`` (JPEG or PNG bytes)."""
    return HEADER.pack(MAGIC, frame_id & 0xFFFFFFFF, float(timestamp_ms)) + bytes(image)


def image_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` of a JPEG or PNG read from its header, without decoding the
    pixels (so a small file declaring a huge image is refused before it costs memory)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise FrameRejected(BAD_IMAGE, "a PNG without its IHDR header")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:3] == b"\xff\xd8\xff":
        return ("jpeg", *_jpeg_size(data))
    raise FrameRejected(NOT_IMAGE, "the frame is not a JPEG or PNG image (its first bytes are "
                                   f"{data[:8].hex(' ') or 'empty'})")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        # start of frame (baseline, progressive, ...): not DHT (C4), JPG (C8) or DAC (CC)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                break
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            return width, height
        if marker == 0xDA or length < 2:  # image data before any size: malformed
            break
        i += 2 + length
    raise FrameRejected(BAD_IMAGE, "a JPEG whose header gives no image size (truncated or corrupt)")


def parse_frame(data: bytes, max_bytes: int, max_side: int) -> Frame:
    """Check a binary message and split it into a :class:`Frame`, or raise :class:`FrameRejected`."""
    if len(data) > max_bytes:
        raise FrameRejected(TOO_LARGE, f"the frame is {len(data):,} bytes; this server takes at most "
                                       f"{max_bytes:,} (downscale it or lower the JPEG quality)")
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise FrameRejected(BAD_FRAME, f"a binary message must start with the {HEADER.size}-byte frame "
                                       f"header ({MAGIC.decode()}, uint32 id, float64 timestamp_ms), then "
                                       "a JPEG or PNG")
    _, frame_id, ts = HEADER.unpack_from(data)
    if not math.isfinite(ts):
        raise FrameRejected(BAD_FRAME, f"the frame's timestamp_ms must be a finite number, got {ts}")
    image = bytes(data[HEADER.size:])
    fmt, width, height = image_size(image)
    if width < 1 or height < 1:
        raise FrameRejected(BAD_IMAGE, f"the {fmt} header gives an empty image ({width}x{height})")
    if max(width, height) > max_side:
        raise FrameRejected(TOO_LARGE, f"the image is {width}x{height}; this server takes at most "
                                       f"{max_side} px on a side (downscale it)")
    return Frame(frame_id, ts, image, fmt, width, height)
