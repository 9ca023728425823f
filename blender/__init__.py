"""Blender-side services shared by operators/ and panels/: the scene's dialogue and
target (sources), the add-on's Python environment, Workbench rendering. Thin, bpy."""
