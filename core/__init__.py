"""Pure-Python/numpy core of the lip-sync add-on. Never imports bpy."""
