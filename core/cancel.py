"""The running job's cancel flag, checked by its long loops on the job's own thread
(recogniser pieces, network chunks, motion layers, key reduction): set by
`pipeline.perform` and the UI's bake job, so an Esc lands within one of those steps."""
from __future__ import annotations

import contextlib
import threading


class Cancelled(Exception):
    """The caller's cancel flag was set; the work was dropped and nothing was written."""


_state = threading.local()


@contextlib.contextmanager
def cancellable(cancelled):
    """Within the block, `check()` on this thread raises Cancelled once `cancelled()` is true."""
    previous = getattr(_state, "cancelled", None)
    _state.cancelled = cancelled
    try:
        yield
    finally:
        _state.cancelled = previous


def check() -> None:
    """Raise Cancelled if this thread's job was cancelled (nothing outside `cancellable`)."""
    flag = getattr(_state, "cancelled", None)
    if flag is not None and flag():
        raise Cancelled()
