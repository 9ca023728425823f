"""UI: sidebar panel, scene properties, preferences. Layout only."""
import bpy

classes = ()


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
