"""Start-up of a server process (asgi.py, wsgi.py)."""

from __future__ import annotations

import gc


def freeze_loaded_objects() -> None:
    """Move everything loaded at start-up (modules, URL patterns, settings, templates: ~140,000
    objects) out of the garbage collector's sight. Otherwise every full collection walks them
    all again — 60–90 ms here, more with thousands of open websockets — and stalls every request
    and frame of the process meanwhile (docs/performance.md → Signaling). They live as long as
    the process anyway."""
    gc.collect()
    gc.freeze()
