"""Blender operators (thin: read properties, call the pipeline, write data) and the
bake writers (bake.py). Registered by the add-on's __init__ from `classes`."""
from . import environment, generate

classes = generate.classes + environment.classes
