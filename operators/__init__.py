"""Blender operators and bake writers (thin: read properties, call core, write data)."""
import bpy

from . import generate

classes = generate.classes


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
