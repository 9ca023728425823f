"""Speech-driven lip sync for FLAME heads: Blender extension entry point.

Registration only, from one list; operators/ and panels/ hold the classes. Nothing
is imported until Blender registers the add-on, so the package's bpy-free parts
(core, models, pipeline) import anywhere.
"""


def _classes():
    from . import operators, panels
    return operators.classes + panels.classes


def register():
    import bpy

    from . import panels
    from .blender import environment
    for cls in _classes():
        bpy.utils.register_class(cls)
    bpy.types.Scene.flame_lipsync = bpy.props.PointerProperty(type=panels.SETTINGS)  # type: ignore[attr-defined]  # ours, added here
    environment.enable()


def unregister():
    import bpy

    from .blender import environment
    environment.disable()
    del bpy.types.Scene.flame_lipsync  # type: ignore[attr-defined]  # added by register()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
