"""UI: sidebar panel, scene properties and add-on preferences. Layout only;
registered by the add-on's __init__ from `classes`."""
from . import preferences, properties, sidebar

classes = properties.classes + sidebar.classes + preferences.classes
SETTINGS = properties.FlameLipSyncSettings  # at scene.flame_lipsync
