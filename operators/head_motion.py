"""Head rotation as an owned rig: an empty at the neck pivot whose rotation is keyed,
and a Child Of constraint on the head that follows it. The artist's own transform,
parent and action stay untouched (a constraint applies after them); Clear removes
the constraint, the empty and its action. Used by both bake modes: the PC2 holds the
face in the head's own frame, the empty turns the whole head."""
import bpy
import numpy as np
from mathutils import Matrix, Quaternion, Vector

from ..core.rig import load_rig
from .bake import OWNER_KEY, PREFIX, link_beside

CONSTRAINT_NAME = "LS_HeadMotion"
# FLAME template frame (metres, +Y up, +Z forward): below the skull base, the pivot
# a nod turns about (the upper neck), mapped onto each head by the rig's head frame.
NECK_PIVOT = np.array([0.0, -0.06, -0.02])


def neck_pivot(head_local: np.ndarray) -> np.ndarray:
    rig = load_rig()
    frame = rig.head_frame(head_local)
    anchors = head_local[rig.anchor_index].mean(0)
    return anchors + frame @ (NECK_PIVOT - rig.anchor_positions.mean(0))


def owned_empty(obj):
    name = obj.get(OWNER_KEY + "_head_empty")
    empty = bpy.data.objects.get(name) if name else None
    return empty if empty is not None and empty.get(OWNER_KEY) else None


def owned_constraint(obj):
    constraint = obj.constraints.get(CONSTRAINT_NAME)
    return constraint if constraint is not None and constraint.type == "CHILD_OF" else None


def quaternions(rotation: np.ndarray, head_rotation: Matrix) -> np.ndarray:
    """(T, 3) pitch, yaw, roll (radians, about the head's own x, y, z) -> (T, 4) world
    quaternions w, x, y, z: the head's rotation conjugated into world axes."""
    base = head_rotation.to_quaternion()
    inverse = base.inverted()
    out = np.empty((len(rotation), 4), np.float32)
    for i, (pitch, yaw, roll) in enumerate(np.asarray(rotation, np.float64)):
        local = (Quaternion((0.0, 1.0, 0.0), yaw) @ Quaternion((1.0, 0.0, 0.0), pitch)
                 @ Quaternion((0.0, 0.0, 1.0), roll))
        out[i] = tuple(base @ local @ inverse)  # type: ignore[arg-type]  # stubs give Quaternion no __iter__
    return out


def _fcurves(empty):
    """The empty's four rotation_quaternion curves (slotted actions on 4.4+, legacy before)."""
    ad = empty.animation_data
    action = ad.action
    if getattr(action, "layers", None) and getattr(ad, "action_slot", None) is not None:
        from bpy_extras import anim_utils
        bag = anim_utils.action_get_channelbag_for_slot(action, ad.action_slot)
        return [bag.fcurves.find("rotation_quaternion", index=i) for i in range(4)]
    return [action.fcurves.find("rotation_quaternion", index=i) for i in range(4)]


def bake_head_rotation(obj, head_local: np.ndarray, rotation: np.ndarray, first_frame: int):
    """Key the owned empty with `rotation` (T, 3) from `first_frame`; returns the empty."""
    clear_head_rotation(obj)
    world = obj.matrix_world.copy()
    pivot = world @ Vector(tuple(neck_pivot(head_local)))
    empty = bpy.data.objects.new(f"{PREFIX}Head_{obj.name}", None)
    empty[OWNER_KEY] = True
    empty.empty_display_type, empty.empty_display_size = "SPHERE", 0.02
    link_beside(obj, empty)
    empty.location = pivot
    empty.rotation_mode = "QUATERNION"
    obj[OWNER_KEY + "_head_empty"] = empty.name
    for i in range(4):  # makes the action, slot and curves the version's own way
        empty.keyframe_insert("rotation_quaternion", index=i, frame=first_frame)
    empty.animation_data.action[OWNER_KEY] = True
    values = quaternions(rotation, world.to_3x3().normalized())
    frames = first_frame + np.arange(len(rotation), dtype=np.float32)
    for i, fcurve in enumerate(_fcurves(empty)):
        fcurve.keyframe_points.clear()
        fcurve.keyframe_points.add(len(frames))
        co = np.stack([frames, values[:, i]], 1).astype(np.float32)
        fcurve.keyframe_points.foreach_set("co", co.ravel())
        fcurve.keyframe_points.foreach_set("interpolation", np.ones(len(frames), np.int32))  # linear
        fcurve.update()
    constraint = obj.constraints.new("CHILD_OF")
    constraint.name, constraint.target = CONSTRAINT_NAME, empty
    # At rest (identity rotation) the constraint changes nothing: its inverse is the
    # empty's rest matrix, so the head turns about the pivot by the keyed rotation only.
    constraint.inverse_matrix = Matrix.Translation(pivot).inverted()
    return empty


def clear_head_rotation(obj) -> str | None:
    """Remove the owned constraint, empty and its action; returns the empty's name."""
    constraint = owned_constraint(obj)
    if constraint is not None:
        obj.constraints.remove(constraint)
    empty = owned_empty(obj)
    name = None
    if empty is not None:
        name = empty.name
        action = empty.animation_data.action if empty.animation_data else None
        bpy.data.objects.remove(empty)
        if action is not None and action.get(OWNER_KEY) and action.users == 0:
            bpy.data.actions.remove(action)
    if OWNER_KEY + "_head_empty" in obj:
        del obj[OWNER_KEY + "_head_empty"]
    return name
