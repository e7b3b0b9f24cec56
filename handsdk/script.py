"""How every handsdk command ends: one ``error:`` line and exit status 2 on a refusal.

Shared by the ``handsdk`` CLI and every ``python -m`` tool (training, evaluation, the sign and
gesture plugins' scripts), so it lives below all of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import HandSDKError


def run_script(main: Callable[[], int]) -> int:
    """Run a command's ``main``: a refusal (a :class:`HandSDKError`) or a missing file is one line
    on stderr and exit status 2, not a traceback."""
    try:
        return main()
    except (HandSDKError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
