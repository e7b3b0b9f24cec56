"""Per-photo results kept by the SHA-1 of each photo's bytes, in a gzipped JSON file.

Why: a fresh machine rebuilds the training data from the fetched photos
(``scripts/training_data.sh``), and the slow steps (the teacher, the face cascades) give the same
result for the same bytes on any machine. Keeping their outputs, never the pixels, in a committed
file turns those steps into a lookup.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any


def photo_key(path: str | Path, salt: bytes = b"") -> str:
    """The key of a photo: the SHA-1 of its bytes (and of ``salt``, for what else decides the
    result), the same for the same photo anywhere on any machine."""
    return hashlib.sha1(Path(path).read_bytes() + salt).hexdigest()


def read_cache(path: Path) -> dict[str, Any]:
    """The cache's mapping, or {} where the file does not exist yet."""
    return json.loads(gzip.decompress(path.read_bytes())) if path.exists() else {}


def write_cache(path: Path, cache: dict[str, Any]) -> None:
    """Sorted, one line, gzip without a timestamp: the same results give the same bytes."""
    text = json.dumps(dict(sorted(cache.items())), separators=(",", ":"))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
    tmp.replace(path)
