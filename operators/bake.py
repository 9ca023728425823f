"""Bake writers: Performance data -> Blender data (shape keys + one action, or
PC2 file + MeshCache modifier). No UI, no operators, no ``bpy.ops``: these
functions only touch data, so the calling operator's undo push captures them.

Ownership. Everything created here is marked so re-bake and Clear touch only
ours: our Action carries ``action[OWNER_KEY] = True``; KeyBlocks and modifiers
cannot hold custom properties, so their names (and whether we created the
Basis / the Key's animation data / an NLA stash track) are recorded in
``obj[OWNER_KEY]``, a dict. Shape keys, actions, modifiers and NLA tracks the
artist made are never modified or deleted.

Action API per Blender version:
- 4.2 / 4.3 (legacy): ``action.fcurves.new(...)``, ``anim_data.action = action``.
- 4.4+ (slotted/layered; 5.0 has no ``Action.fcurves``): a slot of type 'KEY'
  (``action.slots.new``), layer + keyframe strip, ``strip.channelbag(slot,
  ensure=True).fcurves.new(...)``, and ``anim_data.action_slot = slot``.
"""
from __future__ import annotations

import math
import os

import bpy
import numpy as np

from ..core.atomic import write_error
from ..core.key_reduction import DEFAULT_TOLERANCE, reduce_keys
from ..core.pc2 import write_pc2
from ..core.rig import LAYER_OF

OWNER_KEY = "flame_lipsync"
PREFIX = "LS_"
MODIFIER_NAME = "LS_MeshCache"
GROUP_NAME = "Lip Sync"
SLOTTED = bpy.app.version >= (4, 4, 0)
CONFLICT_CHOICES = ("refuse", "stash")

_INTERPOLATION = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}   # eBezTriple_Interpolation
_AUTO_CLAMPED = 4                                             # HD_AUTO_ANIM (eBezTriple_Handle)
KEY_CHOICES = ("EVERY_FRAME", "REDUCED")


class BakeConflict(RuntimeError):
    """Artist data blocks the bake; the message names it and the choices."""


# --------------------------------------------------------------------------
# Ownership record


def _record(obj) -> dict:
    rec = obj.get(OWNER_KEY)
    if rec is None or not hasattr(rec, "to_dict"):
        return {}
    return rec.to_dict()


def _store(obj, rec: dict) -> None:
    rec = {k: v for k, v in rec.items() if v not in (None, "", [], False)}
    if rec:
        obj[OWNER_KEY] = rec
    elif OWNER_KEY in obj:
        del obj[OWNER_KEY]


def _is_ours(action) -> bool:
    return action is not None and bool(action.get(OWNER_KEY))


def _key(obj):
    return obj.data.shape_keys if obj.type == 'MESH' else None


def owned_shape_keys(obj) -> list:
    """Our control key blocks (``LS_<control>``) on this object's mesh, in order."""
    key = _key(obj)
    names = set(_record(obj).get("shape_keys", []))
    if key is None or not names:
        return []
    return [kb for kb in key.key_blocks if kb.name in names]


def owned_action(obj):
    """Our Action if it is the active action of the mesh's Key, else None."""
    key = _key(obj)
    ad = key.animation_data if key is not None else None
    if ad is not None and _is_ours(ad.action):
        return ad.action
    return None


def link_beside(obj, new) -> None:
    """Put an object we create (teeth, head empty) in the head's collections that can take
    it: a linked or overridden collection refuses new objects, which would stop a bake
    halfway; then the scene's own collection holds it."""
    editable = [c for c in obj.users_collection if c.library is None and c.override_library is None]
    scene = obj.users_scene[0] if obj.users_scene else bpy.context.scene
    for collection in editable or [scene.collection]:
        collection.objects.link(new)


def owned_modifier(obj):
    name = _record(obj).get("modifier")
    mod = obj.modifiers.get(name) if name else None
    return mod if mod is not None and mod.type == 'MESH_CACHE' else None


def _active_key_name(obj):
    key = _key(obj)
    if key is None or not 0 <= obj.active_shape_key_index < len(key.key_blocks):
        return None
    return key.key_blocks[obj.active_shape_key_index].name


def _restore_active_key(obj, name) -> None:
    """Adding/removing key blocks moves the active index; put the artist's back."""
    key = _key(obj)
    if key is not None and name is not None and name in key.key_blocks:
        obj.active_shape_key_index = key.key_blocks.find(name)


# --------------------------------------------------------------------------
# Checks (run before anything is written)


def _check_mesh(obj, vertex_count: int | None = None):
    if obj is None or obj.type != 'MESH':
        raise ValueError(f"'{getattr(obj, 'name', obj)}' is not a mesh object; select the head mesh")
    if obj.mode == 'EDIT':
        raise ValueError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and bake again")
    n = len(obj.data.vertices)
    if vertex_count is not None and n != vertex_count:
        raise ValueError(f"'{obj.name}' has {n} vertices but the bake data has {vertex_count}; "
                         "bake onto the FLAME head the data was made for")
    return n


def stashed_artist_action(obj) -> str | None:
    """The artist's action our last bake moved to an NLA track (Clear restores it)."""
    return _record(obj).get("stashed_action")


def _conflict_action(obj, on_conflict: str):
    """The artist's action blocking the bake (to stash), or None; raise when refused."""
    key = _key(obj)
    ad = key.animation_data if key is not None else None
    if ad is None:
        return None
    if ad.use_tweak_mode:
        raise BakeConflict(
            f"Shape keys of '{obj.name}' are in NLA tweak mode; exit tweak mode "
            "(NLA editor: Tab) and bake again")
    if ad.action is None or _is_ours(ad.action):
        return None
    if on_conflict == "stash":
        return ad.action
    raise BakeConflict(
        f"Shape keys of '{obj.name}' already use action '{ad.action.name}' that Lip Sync "
        "did not create; choose 'Stash' (command line: --stash) to move it to an NLA track "
        "(kept unchanged) and bake, or unassign it")


# --------------------------------------------------------------------------
# Shape keys + action


def layer_group(control: str) -> str:
    """The F-curve group of a control's curve: "Lip Sync" for the mouth (as before the
    upper face existed), "Lip Sync: eyes" etc. for the other layers."""
    layer = LAYER_OF.get(str(control), "mouth")
    return GROUP_NAME if layer == "mouth" else f"{GROUP_NAME}: {layer}"


def _bake_names(control_names) -> list[str]:
    names = [PREFIX + str(c) for c in control_names]
    if any(not str(c) for c in control_names) or len(set(names)) != len(names):
        raise ValueError(f"control names must be unique and non-empty, got {list(control_names)}")
    if any(len(n) >= 64 for n in names):
        raise ValueError("control names must be shorter than 61 characters")
    return names


def _stash(ad, action):
    """Push the artist's action into a new NLA track, unchanged; return the track."""
    slot = ad.action_slot if SLOTTED else None
    start = float(action.frame_range[0])
    track = ad.nla_tracks.new()
    track.name = f"{action.name} (stashed by Lip Sync)"
    strip = track.strips.new(action.name, int(math.floor(start)), action)
    if strip.frame_start != start and hasattr(strip, "frame_start_ui"):
        strip.frame_start_ui = start
    if SLOTTED and slot is not None and strip.action_slot != slot:
        strip.action_slot = slot
    strip.blend_type = ad.action_blend_type
    strip.extrapolation = ad.action_extrapolation
    ad.action = None
    return track


def _our_action(obj, key):
    """Reuse our active (or orphaned) action, or make a new one."""
    action = owned_action(obj)
    if action is None:
        orphan = bpy.data.actions.get(PREFIX + obj.name)
        if _is_ours(orphan) and orphan.users == 0 and orphan.library is None:
            action = orphan
    if action is None:
        action = bpy.data.actions.new(PREFIX + obj.name)
    action[OWNER_KEY] = True
    return action


def _fcurve_factory(action, key, keep: bool = False):
    """Clear our action's curves (`keep`: keep them, a range re-bake reuses each control's
    curve); return (new_fcurve(data_path), slot)."""
    if not SLOTTED:
        action.id_root = 'KEY'
        if not keep:
            action.fcurves.clear()
        return (lambda path, group=GROUP_NAME: action.fcurves.find(path, index=0)
                or action.fcurves.new(path, index=0, action_group=group)), None

    slot = next((s for s in action.slots if s.target_id_type in ('KEY', 'UNSPECIFIED')), None)
    if slot is None:
        slot = action.slots.new(id_type='KEY', name=key.name)
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type='KEYFRAME')
    bag = strip.channelbag(slot, ensure=True)
    if not keep:
        bag.fcurves.clear()

    def new(path, group_name=GROUP_NAME):
        existing = bag.fcurves.find(path, index=0) if keep else None
        if existing is not None:
            return existing
        try:    # 5.0+
            return bag.fcurves.new(path, index=0, group_name=group_name)
        except TypeError:   # 4.4 / 4.5: no group_name
            fcurve = bag.fcurves.new(path, index=0)
            try:
                group = bag.groups.get(group_name) or bag.groups.new(group_name)
                fcurve.group = group
            except (AttributeError, TypeError, RuntimeError):
                pass
            return fcurve
    return new, slot


def _write_fcurve(fcurve, frames: np.ndarray, values: np.ndarray, interpolation: str):
    """Keys at `frames` with auto-clamped handles (what core.key_reduction models: no
    auto smoothing). Keys already on the curve inside frames[0]..frames[-1] are replaced;
    keys outside it (an animator's edits after a range re-bake) are kept as they are."""
    points = fcurve.keyframe_points
    fcurve.auto_smoothing = 'NONE'
    lo, hi = float(frames[0]) - 0.5, float(frames[-1]) + 0.5
    for point in reversed([p for p in points if lo <= p.co[0] <= hi]):
        points.remove(point, fast=True)
    kept = len(points)
    points.add(len(frames))
    total = kept + len(frames)
    co = np.empty(total * 2, np.float32)
    points.foreach_get("co", co)
    co = co.reshape(total, 2)
    co[kept:, 0], co[kept:, 1] = frames, values
    points.foreach_set("co", co.ravel())
    for attr, value in (("interpolation", _INTERPOLATION[interpolation]),
                        ("handle_left_type", _AUTO_CLAMPED), ("handle_right_type", _AUTO_CLAMPED)):
        array = np.empty(total, np.int32)
        points.foreach_get(attr, array)
        array[kept:] = value
        points.foreach_set(attr, array)
    fcurve.update()     # sorts the keys and computes the auto-clamped handles


def bake_shape_keys(obj, control_names, fields_local: np.ndarray, weights: np.ndarray,
                    frame_start: int, on_conflict: str = "refuse",
                    interpolation: str = "LINEAR", keys: str = "EVERY_FRAME",
                    tolerance: float = DEFAULT_TOLERANCE, replace_range: bool = False,
                    reduced=None):
    """Bake per-frame control weights as shape keys + one action on the mesh's Key.

    fields_local: (C, N, 3) offsets in the mesh's local space at weight 1.
    weights: (T, C); key i lands on frame ``frame_start + i``.
    on_conflict: "refuse" raises BakeConflict (nothing changed) when the Key
    already uses an action we did not create; "stash" moves that action,
    unchanged, into a new NLA track and assigns ours.
    keys: "EVERY_FRAME" (one key per frame, `interpolation`) or "REDUCED": the fewest
    Bézier keys with auto-clamped handles keeping every vertex within `tolerance` (local
    units: metres on a FLAME head) of the every-frame bake, closures sealed
    (core.key_reduction).
    replace_range: re-bake only frames frame_start..frame_start+T-1 of our existing action:
    keys inside them are replaced, keys outside (an animator's edits) are kept.
    Returns our Action (the Key's active action).
    """
    if keys not in KEY_CHOICES:
        raise ValueError(f"keys must be one of {KEY_CHOICES}, got {keys!r}")
    if on_conflict not in CONFLICT_CHOICES:
        raise ValueError(f"on_conflict must be one of {CONFLICT_CHOICES}, got {on_conflict!r}")
    if interpolation not in _INTERPOLATION:
        raise ValueError(f"interpolation must be one of {tuple(_INTERPOLATION)}, got {interpolation!r}")
    names = _bake_names(control_names)
    fields = np.asarray(fields_local, np.float64)
    weights = np.asarray(weights, np.float64)
    if fields.ndim != 3 or fields.shape[0] != len(names) or fields.shape[2] != 3:
        raise ValueError(f"fields must be ({len(names)}, N, 3), got {fields.shape}")
    if weights.ndim != 2 or weights.shape[1] != len(names) or len(weights) == 0:
        raise ValueError(f"weights must be (T>0, {len(names)}), got {weights.shape}")
    if not (np.isfinite(fields).all() and np.isfinite(weights).all()):
        raise ValueError("fields/weights contain NaN or inf")
    n = _check_mesh(obj, fields.shape[1])

    # All checks first: a refused bake changes nothing.
    key = _key(obj)
    rec = _record(obj)
    ours = set(rec.get("shape_keys", []))
    if key is not None:
        if not key.use_relative:
            raise BakeConflict(
                f"Shape keys of '{obj.name}' are absolute ('Relative' unchecked); Lip Sync bakes "
                "relative shape keys. Enable 'Relative' in the Shape Keys panel, or bake as mesh cache")
        for name in names:
            if name in key.key_blocks and name not in ours:
                raise BakeConflict(
                    f"Shape key '{name}' on '{obj.name}' was not created by Lip Sync; "
                    "rename it and bake again")
    stash = _conflict_action(obj, on_conflict)

    # Shape keys.
    active = _active_key_name(obj)
    if key is None:
        basis = obj.shape_key_add(name="Basis", from_mix=False)
        rec["basis"] = basis.name
        key = obj.data.shape_keys
    reference = key.reference_key
    basis_co = np.empty(n * 3, np.float32)
    reference.data.foreach_get("co", basis_co)
    basis_co = basis_co.reshape(n, 3).astype(np.float64)
    for stale in [kb for kb in key.key_blocks if kb.name in ours and kb.name not in names]:
        obj.shape_key_remove(stale)
    lo = float(min(0.0, weights.min()))
    hi = float(max(2.0, math.ceil(weights.max())))
    for name, field in zip(names, fields):
        kb = key.key_blocks.get(name)
        if kb is None:
            kb = obj.shape_key_add(name=name, from_mix=False)
            kb.value = 0.0      # rest when not animated (new keys default to 1.0 in 5.0)
        kb.data.foreach_set("co", (basis_co + field).astype(np.float32).ravel())
        kb.relative_key = reference
        kb.slider_min, kb.slider_max = max(lo, -10.0), min(hi, 10.0)
    rec["shape_keys"] = names
    _restore_active_key(obj, active)

    # Action.
    ad = key.animation_data
    if ad is None:
        ad = key.animation_data_create()
        rec["anim_data"] = True
    if stash is not None:
        track = _stash(ad, stash)
        rec["stash_track"], rec["stashed_action"] = track.name, stash.name
    keep = replace_range and owned_action(obj) is not None
    action = _our_action(obj, key)
    new_fcurve, slot = _fcurve_factory(action, key, keep)
    frames = frame_start + np.arange(len(weights), dtype=np.float64)
    kept_keys = [np.arange(len(weights))] * len(names)
    if keys == "REDUCED":
        # Inside a kept curve the range's ends are not the curve's ends: two keys at each
        # end make the frames there exact whatever the neighbours outside (their handles).
        ends = (0, 1, len(weights) - 2, len(weights) - 1) if keep else ()
        # `reduced`: the same search run off the main thread (operators.job.reduce_in_worker).
        kept_keys = reduced if reduced is not None and not keep else reduce_keys(
            weights, fields, tolerance, control_names, pinned=ends,
            head=basis_co if n == fields.shape[1] else None).keys
        interpolation = "BEZIER"
    for c, name in enumerate(names):
        # One F-curve group per layer (mouth, eyes, brows, emotion): mute or scale one alone.
        fcurve = new_fcurve(f'key_blocks["{name}"].value', layer_group(control_names[c]))
        at = kept_keys[c]
        _write_fcurve(fcurve, frames[at], weights[at, c], interpolation)
    if ad.action != action:
        ad.action = action
    if slot is None and getattr(ad, "action_slot", False) is None and len(action.slots):
        slot = action.slots[0]      # legacy calls on a slotted Blender: its "Legacy Slot"
    if slot is not None and ad.action_slot != slot:
        ad.action_slot = slot
    rec["action"] = action.name
    _store(obj, rec)
    key.update_tag()
    return action


# --------------------------------------------------------------------------
# One action per dialogue line, on an NLA track

LINES_TRACK = "Lip Sync dialogue"


def line_actions(obj) -> list:
    """Our per-line actions (bake_lines), in the order baked."""
    return [bpy.data.actions[n] for n in _record(obj).get("line_actions", [])
            if n in bpy.data.actions and _is_ours(bpy.data.actions[n])]


def remove_lines(obj) -> dict:
    """Remove our dialogue-lines track and its actions; returns what was removed."""
    rec = _record(obj)
    key = _key(obj)
    ad = key.animation_data if key is not None else None
    removed = {"nla_track": None, "actions": []}
    track = ad.nla_tracks.get(rec.get("line_track", "")) if ad is not None else None
    if track is not None and all(_is_ours(s.action) for s in track.strips):
        removed["nla_track"] = track.name
        ad.nla_tracks.remove(track)
    for action in line_actions(obj):
        if action.users == 0:
            removed["actions"].append(action.name)
            bpy.data.actions.remove(action)
    rec.pop("line_track", None)
    rec.pop("line_actions", None)
    _store(obj, rec)
    return removed


def bake_lines(obj, control_names, fields_local, lines, on_conflict: str = "refuse",
               keys: str = "REDUCED", tolerance: float = DEFAULT_TOLERANCE):
    """One action per dialogue line, each an NLA strip at its line's frames, named after it.

    lines: [(name, frame_start, weights (T, C))], e.g. one per sound strip of a channel.
    The shape keys are baked once (as bake_shape_keys); each line's action (``LS_<name>``)
    plays from an NLA strip ``<name>`` on our track ``Lip Sync dialogue``, starting at
    `frame_start`, so the keys sit at the scene frames where the line plays. Our previous
    lines (and our active action) are replaced; the artist's actions are kept.
    Returns the NLA track.
    """
    if not lines:
        raise ValueError("no dialogue lines to bake")
    starts = sorted((int(s), int(s) + len(w) - 1, n) for n, s, w in lines)
    for (a0, a1, an), (b0, b1, bn) in zip(starts, starts[1:]):
        if b0 <= a1:
            raise ValueError(f"dialogue lines '{an}' (frames {a0}-{a1}) and '{bn}' (frames {b0}-{b1}) "
                             "overlap: one NLA track plays one at a time; move one of the strips")
    remove_lines(obj)
    made, track = [], None
    for name, start, weights in sorted(lines, key=lambda line: line[1]):
        action = bake_shape_keys(obj, control_names, fields_local, weights, int(start), on_conflict,
                                 keys=keys, tolerance=tolerance)
        on_conflict = "refuse"      # stashed (if asked) on the first line
        action.name = PREFIX + str(name)
        ad = _key(obj).animation_data
        slot = ad.action_slot if SLOTTED else None
        if track is None:
            track = ad.nla_tracks.new()
            track.name = LINES_TRACK
        strip = track.strips.new(str(name), int(start), action)
        if SLOTTED and slot is not None and strip.action_slot != slot:
            strip.action_slot = slot
        ad.action = None
        made.append(action.name)
    rec = _record(obj)
    rec.pop("action", None)
    rec["line_track"], rec["line_actions"] = track.name, made
    _store(obj, rec)
    return track


# --------------------------------------------------------------------------
# Mesh cache


def _checked_chunks(vertices, n: int):
    if isinstance(vertices, np.ndarray):
        vertices = (vertices,)
    for chunk in vertices:
        chunk = np.asarray(chunk)
        if chunk.shape[-2:] != (n, 3):
            raise ValueError(f"mesh cache frames must be (T, {n}, 3), got a chunk of shape {chunk.shape}")
        yield chunk


def bake_mesh_cache(obj, vertices_local, frame_start: int, pc2_path: str, relative: bool = True,
                    on_conflict: str = "refuse"):
    """Write per-frame local vertex positions to a PC2 file and play it with a
    MeshCache modifier (``LS_MeshCache``, first in the stack) so cache frame k
    shows at scene frame ``frame_start + k``.

    vertices_local: (T, N, 3) array or an iterable of (t, N, 3) / (N, 3) chunks.
    pc2_path: absolute path (or '//'-relative to the saved .blend).
    relative: store the path as '//...' (requires a saved .blend).
    on_conflict: as for shape keys: the cache replaces the mesh, so an action of the
    artist's on the Key would silently stop showing; "refuse" raises BakeConflict
    (nothing changed), "stash" moves it, unchanged, to an NLA track (Clear restores it).
    """
    if on_conflict not in CONFLICT_CHOICES:
        raise ValueError(f"on_conflict must be one of {CONFLICT_CHOICES}, got {on_conflict!r}")
    n = _check_mesh(obj)
    pc2_path = os.fspath(pc2_path)
    if pc2_path.startswith("//"):
        if not bpy.data.filepath:
            raise ValueError("the .blend file is not saved, so a '//' path has no folder; "
                             "save the .blend first or give an absolute path")
        pc2_path = bpy.path.abspath(pc2_path)
    if not os.path.isabs(pc2_path):
        raise ValueError(f"the PC2 path must be absolute, got '{pc2_path}'")
    if relative and not bpy.data.filepath:
        raise ValueError("the .blend file is not saved, so the mesh cache cannot be stored beside it "
                         "with a relative path; save the .blend first or choose a folder for the cache")
    existing = obj.modifiers.get(MODIFIER_NAME)
    if existing is not None and existing != owned_modifier(obj):
        raise BakeConflict(f"Modifier '{MODIFIER_NAME}' on '{obj.name}' was not created by Lip Sync; "
                           "rename it and bake again")
    try:
        stash = _conflict_action(obj, on_conflict)
    except BakeConflict as err:
        raise BakeConflict(str(err).replace("did not create;", "did not create, and a mesh cache "
                                            "would hide it;", 1)) from None

    # The file first (atomic, streamed): a failed write changes nothing in Blender.
    try:
        os.makedirs(os.path.dirname(pc2_path), exist_ok=True)
    except OSError as err:  # a file in the way, a read-only place: say so with the cache's path
        raise write_error(pc2_path, err) from None
    write_pc2(pc2_path, _checked_chunks(vertices_local, n), float(frame_start), 1.0)

    mod = owned_modifier(obj)
    if mod is None:
        active = getattr(obj.modifiers, "active", None)
        mod = obj.modifiers.new(MODIFIER_NAME, 'MESH_CACHE')
        # First in the stack: it needs the 5023 input vertices (before any subdivision).
        obj.modifiers.move(len(obj.modifiers) - 1, 0)
        if active is not None:      # adding made ours active: give the artist's back
            obj.modifiers.active = active
    mod.cache_format = 'PC2'
    filepath = pc2_path
    if relative:
        try:
            filepath = bpy.path.relpath(pc2_path)
        except ValueError:   # other drive on Windows: no relative path exists
            filepath = pc2_path
    mod.filepath = filepath
    mod.deform_mode = 'OVERWRITE'
    mod.interpolation = 'LINEAR'
    mod.time_mode = 'FRAME'
    mod.play_mode = 'SCENE'
    # Cache frame = scene frame * frame_scale - frame_start (MOD_meshcache.cc).
    mod.frame_start = float(frame_start)
    mod.frame_scale = 1.0
    mod.factor = 1.0
    mod.vertex_group = ""
    # POS_Y forward + POS_Z up is the identity: local coordinates as written.
    mod.forward_axis, mod.up_axis = 'POS_Y', 'POS_Z'
    try:
        mod.flip_axis = (False, False, False)
    except TypeError:   # enum-flag variant
        mod.flip_axis = set()
    rec = _record(obj)
    if stash is not None:
        track = _stash(stash_owner(obj), stash)
        rec["stash_track"], rec["stashed_action"] = track.name, stash.name
    rec["modifier"], rec["pc2"] = mod.name, pc2_path
    _store(obj, rec)
    return mod


def stash_owner(obj):
    """The Key's animation data (where the artist's blocking action lives)."""
    return _key(obj).animation_data


# --------------------------------------------------------------------------
# Clear


def clear_bake(obj) -> dict:
    """Remove only what Lip Sync created on `obj`; return what was removed.

    The PC2 file is left on disk (Undo cannot bring back a deleted file); its
    path is reported as ``pc2_file``.
    """
    rec = _record(obj)
    report: dict = {"shape_keys": [], "basis": None, "action": None, "anim_data": False,
              "restored_action": None, "nla_track": None, "modifier": None, "pc2_file": None}
    key = _key(obj)
    if key is not None:
        ad = key.animation_data
        action = owned_action(obj)
        if action is not None:
            report["action"] = action.name
            ad.action = None
            if action.users == 0:
                bpy.data.actions.remove(action)
        lines = remove_lines(obj)
        if lines["nla_track"] or lines["actions"]:
            report["line_actions"] = lines["actions"]
        rec = _record(obj)
        track = ad.nla_tracks.get(rec.get("stash_track", "")) if ad is not None else None
        if track is not None and ad.action is None and len(track.strips) == 1 \
                and track.strips[0].action is not None \
                and track.strips[0].action.name == rec.get("stashed_action"):
            strip = track.strips[0]
            restored, slot = strip.action, (strip.action_slot if SLOTTED else None)
            ad.nla_tracks.remove(track)
            ad.action = restored
            if SLOTTED and slot is not None:
                ad.action_slot = slot
            report["restored_action"], report["nla_track"] = restored.name, rec["stash_track"]
        active = _active_key_name(obj)
        for kb in owned_shape_keys(obj):
            report["shape_keys"].append(kb.name)
            obj.shape_key_remove(kb)
        _restore_active_key(obj, active)
        basis = rec.get("basis")
        if basis and len(key.key_blocks) == 1 and key.key_blocks[0].name == basis:
            ad = key.animation_data
            if ad is None or (ad.action is None and not len(ad.nla_tracks) and not len(ad.drivers)):
                obj.shape_key_remove(key.key_blocks[0])     # last key: the Key goes too
                report["basis"] = basis
        key = _key(obj)
        if key is not None and rec.get("anim_data") and key.animation_data is not None:
            ad = key.animation_data
            if ad.action is None and not len(ad.nla_tracks) and not len(ad.drivers):
                key.animation_data_clear()
                report["anim_data"] = True
    mod = owned_modifier(obj)
    if mod is not None:
        report["modifier"] = mod.name
        report["pc2_file"] = rec.get("pc2")
        obj.modifiers.remove(mod)
    if OWNER_KEY in obj:
        del obj[OWNER_KEY]
    if obj.type == 'MESH':
        obj.data.update_tag()
    return report
