"""Speech-driven lip sync for FLAME heads: Blender extension entry point.

Registration only; operators/ and panels/ hold the classes.
"""
from . import operators, panels


def register():
    operators.register()
    panels.register()


def unregister():
    panels.unregister()
    operators.unregister()
