"""Word and phone markers on the timeline, owned by Lip Sync.

Timeline markers rather than a text strip: markers show in the Timeline, Dope Sheet,
Graph Editor and NLA, the editors where an animator moves the keys, and snap keys to
words; a text strip shows only in the Sequencer and renders into the video unless muted.

Markers cannot hold custom properties, so ours are recorded on the scene
(``scene["flame_lipsync_markers"]``: name, frame and the head they were baked for).
Re-bake and Clear remove only recorded markers still at their name and frame; a marker
the artist renamed or moved is theirs and stays.
"""
from __future__ import annotations

import functools
import math

RECORD_KEY = "flame_lipsync_markers"
SILENCES = ("SIL", "sil", "<sil>")


@functools.lru_cache(maxsize=1)
def _pronunciations() -> dict:
    """CMUdict (the recogniser's own) word -> list of phone tuples, stress removed."""
    from ..core.phones import _pocketsphinx
    path = _pocketsphinx().get_model_path("en-us/cmudict-en-us.dict")
    table: dict = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 1:
                word = parts[0].split("(", 1)[0]
                table.setdefault(word, []).append(tuple(p.upper().rstrip("012") for p in parts[1:]))
    return table


def timed_words(phones, transcript: str | None) -> list[tuple[str, float, float]]:
    """(word, start, end) from the phones forced-aligned to `transcript`: each word's
    pronunciation is matched against the phones in order. Stops at the first word that
    does not match (a fallback to recognition); [] without a transcript."""
    if not transcript or not transcript.strip():
        return []
    from ..core.phones import normalise_transcript
    table = _pronunciations()
    speech = [p for p in phones if p[0] not in SILENCES]
    words, i = [], 0
    for word in normalise_transcript(transcript):
        labels = tuple(p[0].upper() for p in speech[i:i + 12])
        match = next((len(pron) for pron in sorted(table.get(word, ()), key=len, reverse=True)
                      if labels[:len(pron)] == pron), None)
        if not match:
            break
        words.append((word, float(speech[i][1]), float(speech[i + match - 1][2])))
        i += match
    return words


def marks(performance, kind: str, transcript: str | None = None) -> list[tuple[str, float]]:
    """(label, seconds) to mark: "WORDS" (phones when no word could be timed) or "PHONES"."""
    phones = performance.metadata.get("phones", [])
    if kind == "WORDS":
        words = timed_words(phones, transcript)
        if words:
            return [(w, start) for w, start, _ in words]
    if kind in ("WORDS", "PHONES"):
        return [(p[0], float(p[1])) for p in phones if p[0] not in SILENCES]
    return []


def remove_markers(scene, obj_name: str | None = None) -> int:
    """Remove our markers (those baked for `obj_name`, or all); returns how many."""
    record = [dict(r) for r in scene.get(RECORD_KEY, [])]
    keep, removed = [], 0
    for entry in record:
        if obj_name is not None and entry.get("object") != obj_name:
            keep.append(entry)
            continue
        matches = [m for m in scene.timeline_markers
                   if m.name == entry["name"] and m.frame == entry["frame"]]
        if matches:
            scene.timeline_markers.remove(matches[0])
            removed += 1
    if keep:
        scene[RECORD_KEY] = keep
    elif RECORD_KEY in scene:
        del scene[RECORD_KEY]
    return removed


def add_markers(scene, obj_name: str, performance, kind: str, origin: int | None = None,
                transcript: str | None = None, replace: bool = True) -> int:
    """Replace our markers for `obj_name` with one per word/phone; `origin`: the scene
    frame of the speech's time 0 (default: the performance's first frame). Only marks
    on the baked frames are added; `replace`: remove our earlier markers for the head
    first (False: add to them, as for several lines). Returns how many."""
    if replace:
        remove_markers(scene, obj_name)
    origin = performance.first_frame if origin is None else origin
    lo, hi = performance.first_frame, performance.first_frame + performance.frame_count - 1
    record = [dict(r) for r in scene.get(RECORD_KEY, [])]
    count = 0
    for label, seconds in marks(performance, kind, transcript):
        frame = origin + int(math.floor(seconds * performance.fps + 0.5))
        if lo <= frame <= hi:
            scene.timeline_markers.new(label, frame=frame)
            record.append({"name": label, "frame": frame, "object": obj_name})
            count += 1
    if record:
        scene[RECORD_KEY] = record
    return count
