"""What a user reads when a job fails: one message that says what happened and what to
do, the same in the sidebar and on the command line (no bpy).

Our own errors (AudioError, MeshError, WriteError, DataFileError...) already say both.
An OSError from the system does not: "[Errno 28] No space left on device: '/shots/a.pc2'"
becomes "could not write '/shots/a.pc2': the disk is full; free some space or write to
another disk." Anything else is a bug, and says so.
"""
from __future__ import annotations

import errno

from .atomic import describe

# User errors: bad input, a refused conflict, a file that cannot be read or written.
USER_ERRORS = (ValueError, RuntimeError, OSError)

_WRITING = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def os_message(err: OSError) -> str:
    """An OSError in words: the path, what happened, what to do."""
    reason, todo = describe(err)
    where = f" '{err.filename}'" if err.filename else ""
    if err.filename2:
        where += f" to '{err.filename2}'"
    verb = "write" if err.errno in _WRITING or err.errno is None else "use"
    return f"could not {verb}{where}: {reason}; {todo}."


def _from_system(err: BaseException) -> bool:
    """An OSError raised by the system (errno set, or numpy's full-disk write), not one of
    ours that carries its own sentence (e.g. FileNotFoundError("audio file ... does not exist"))."""
    return isinstance(err, OSError) and (err.errno is not None or "requested and" in str(err))


def user_message(err: BaseException, bug_hint: str = "with what you did; the system console has the details") -> str:
    """The message for `err`: ours as they are, the system's in words, a bug as a bug."""
    if _from_system(err):
        return os_message(err)  # type: ignore[arg-type]
    text = str(err).strip()
    if isinstance(err, USER_ERRORS) and text:
        return text
    first = text.splitlines()[0] if text else ""
    return f"unexpected {type(err).__name__}{': ' + first if first else ''} (a bug: please report it {bug_hint})"
