"""UI: sidebar panel and scene properties. Layout only."""
import bpy

from . import properties, sidebar

classes = properties.classes + sidebar.classes


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register()


def unregister():
    properties.unregister()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
