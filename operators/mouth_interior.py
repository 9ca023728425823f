"""Teeth, tongue and mouth cavity as owned objects parented to the head.

The geometry comes from core.mouth_interior (fitted to the head's own mouth). Each
part is one mesh object, marked ``obj[OWNER_KEY] = True``, parented to the head with
an identity parent inverse (its vertices are in the head's local space, so it
follows the head's transform, parent and the head-motion constraint).

The jaw. Lower teeth, tongue and the cavity's floor have a shape key
``LS_jaw_open``: their rigid jaw motion at jaw_open = 1, linear in the value like
the face's own jaw_open key. The cavity's rim is the lips' own inner loop, so it also
has one key per mouth control that moves the loop (LS_pucker, ...).
- Shape-key bakes: each value is driven (an AVERAGE driver, no Python) by the head's
  baked ``LS_jaw_open`` shape-key value, so re-timing or scaling the face's jaw curve
  in the Graph Editor moves the teeth with it.
- Mesh-cache bakes (no face shape keys): each value is keyed every frame from the
  performance's column of that control, in an action marked ours on each part's Key.
Clear (and a re-bake) removes the objects, their meshes, materials and actions.
"""
import bpy
import numpy as np

from ..core import mouth_interior
from .bake import OWNER_KEY, PREFIX, link_beside

RECORD_KEY = OWNER_KEY + "_mouth_interior"
LABELS = {"upper_teeth": "UpperTeeth", "lower_teeth": "LowerTeeth", "tongue": "Tongue", "cavity": "MouthCavity"}


def owned_parts(obj) -> list:
    """Our interior objects of this head (those still present and marked ours)."""
    names = obj.get(RECORD_KEY)
    if not names:
        return []
    parts = [bpy.data.objects.get(str(n)) for n in names]
    return [p for p in parts if p is not None and p.get(OWNER_KEY)]


def _material(part: str, head_name: str):
    mat = bpy.data.materials.new(f"{PREFIX}{LABELS[part]}_{head_name}")
    mat[OWNER_KEY] = True
    colour = mouth_interior.COLORS[part]
    mat.diffuse_color = (*colour, 1.0)            # viewport / Workbench "Material" colour
    dark = part == "cavity"
    mat.roughness = 1.0 if dark else 0.35
    mat.specular_intensity = 0.0 if dark else 0.3
    if bpy.app.version < (5, 0, 0) and not mat.use_nodes:
        mat.use_nodes = True                      # 5.0+: materials always have nodes
    tree = getattr(mat, "node_tree", None)
    bsdf = next((n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"), None) if tree else None
    if bsdf is not None:                          # render engines and glTF read these
        bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
        bsdf.inputs["Roughness"].default_value = 1.0 if dark else 0.35
        for name in ("Specular IOR Level", "Specular"):
            if name in bsdf.inputs:
                bsdf.inputs[name].default_value = 0.0 if dark else 0.4
                break
    return mat


def _mesh_object(obj, part: mouth_interior.Part):
    name = f"{PREFIX}{LABELS[part.name]}_{obj.name}"
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(part.vertices.astype(float).tolist(), [], part.faces.astype(int).tolist())
    mesh.validate()
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    else:
        mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), bool))
    mesh.update()
    mesh.materials.append(_material(part.name, obj.name))
    mesh[OWNER_KEY] = True
    child = bpy.data.objects.new(name, mesh)
    child[OWNER_KEY] = True
    link_beside(obj, child)
    child.parent = obj
    child.matrix_parent_inverse.identity()        # vertices are already head-local
    child.hide_select = part.name == "cavity"     # clicks inside the mouth pick the teeth
    return child


def _control_keys(child, part: mouth_interior.Part) -> list:
    """One shape key LS_<control> per control that moves this part; returns the names."""
    basis = child.shape_key_add(name="Basis", from_mix=False)
    names = []
    for control, offset in part.offsets.items():
        key = child.shape_key_add(name=PREFIX + control, from_mix=False)
        key.data.foreach_set("co", (part.vertices + offset).astype(np.float32).ravel())
        key.relative_key = basis
        key.slider_min, key.slider_max = 0.0, 2.0
        key.value = 0.0
        names.append(key.name)
    return names


def _drive(child, head, name: str):
    """child's key `name` value = the head's key `name` value."""
    fcurve = child.data.shape_keys.driver_add(f'key_blocks["{name}"].value')
    driver = fcurve.driver
    driver.type = "AVERAGE"                        # one variable: its value, no Python
    var = driver.variables.new()
    var.name, var.type = "face", "SINGLE_PROP"
    target = var.targets[0]
    target.id_type = "KEY"
    target.id = head.data.shape_keys
    target.data_path = f'key_blocks["{name}"].value'
    for modifier in list(fcurve.modifiers):        # a plain copy of the value
        fcurve.modifiers.remove(modifier)


def _channelbag_curve(key, path):
    action = key.animation_data.action
    if getattr(action, "layers", None) and getattr(key.animation_data, "action_slot", None) is not None:
        from bpy_extras import anim_utils
        bag = anim_utils.action_get_channelbag_for_slot(action, key.animation_data.action_slot)
        return bag.fcurves.find(path)
    return action.fcurves.find(path)


def _key_frames(child, name: str, values: np.ndarray, first_frame: int):
    key = child.data.shape_keys
    path = f'key_blocks["{name}"].value'
    key.keyframe_insert(path, frame=first_frame)   # action, slot and curve the version's own way
    key.animation_data.action[OWNER_KEY] = True
    fcurve = _channelbag_curve(key, path)
    frames = first_frame + np.arange(len(values), dtype=np.float32)
    fcurve.keyframe_points.clear()
    fcurve.keyframe_points.add(len(frames))
    fcurve.keyframe_points.foreach_set("co", np.stack([frames, values], 1).astype(np.float32).ravel())
    fcurve.keyframe_points.foreach_set("interpolation", np.ones(len(frames), np.int32))   # linear
    fcurve.update()


def bake_mouth_interior(obj, head_local: np.ndarray, performance, mode: str) -> list:
    """Build (replacing ours) teeth, tongue and cavity for `obj`; returns the objects."""
    clear_mouth_interior(obj)
    interior = mouth_interior.build(head_local)
    names = [str(n) for n in performance.control_names]
    controls = np.asarray(performance.controls, np.float32)
    face_keys = obj.data.shape_keys
    children = []
    for part in interior.parts.values():
        child = _mesh_object(obj, part)
        children.append(child)
        if not part.offsets:
            continue                                # the upper teeth: fixed to the skull
        for name in _control_keys(child, part):
            control = name[len(PREFIX):]
            if mode == "SHAPE_KEYS" and face_keys is not None and name in face_keys.key_blocks:
                _drive(child, obj, name)
            else:
                values = (controls[:, names.index(control)] if control in names
                          else np.zeros(performance.frame_count, np.float32))
                _key_frames(child, name, values, performance.first_frame)
    obj[RECORD_KEY] = [c.name for c in children]
    return children


def clear_mouth_interior(obj) -> list:
    """Remove our interior objects of `obj` (and their meshes, materials, actions)."""
    removed = []
    for child in owned_parts(obj):
        removed.append(child.name)
        mesh = child.data
        key = mesh.shape_keys
        action = key.animation_data.action if key is not None and key.animation_data else None
        materials = [m for m in mesh.materials if m is not None and m.get(OWNER_KEY)]
        bpy.data.objects.remove(child)
        if mesh.users == 0 and mesh.get(OWNER_KEY):
            bpy.data.meshes.remove(mesh)
        if action is not None and action.get(OWNER_KEY) and action.users == 0:
            bpy.data.actions.remove(action)
        for mat in materials:
            if mat.users == 0:
                bpy.data.materials.remove(mat)
    if RECORD_KEY in obj:
        del obj[RECORD_KEY]
    return removed

