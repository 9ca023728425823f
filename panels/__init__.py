"""UI: sidebar panel, scene properties and add-on preferences. Layout only."""
import bpy

from . import preferences, properties, sidebar

classes = properties.classes + sidebar.classes


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register()
    preferences.register()


def unregister():
    preferences.unregister()
    properties.unregister()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
