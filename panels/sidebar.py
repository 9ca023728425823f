"""The Lip Sync tab in the 3D View's sidebar (N panel)."""
import bpy

from ..core.flame import VERTEX_COUNT
from ..pipeline.engines import ENGINES


class FLAMELIPSYNC_PT_main(bpy.types.Panel):
    bl_label = "Lip Sync"
    bl_idname = "FLAMELIPSYNC_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Lip Sync"

    def draw(self, context):
        props = context.scene.flame_lipsync
        layout = self.layout
        layout.use_property_split = True

        col = layout.column(heading="Dialogue")
        col.prop(props, "source")
        col.prop(props, "strip" if props.source == "STRIP" else "audio_file")
        col.prop(props, "transcript")
        col.prop(props, "transcript_beside_audio")

        obj = context.active_object
        box = layout.box()
        if obj is None or obj.type != "MESH":
            box.label(text="Select a FLAME head mesh", icon="ERROR")
        elif len(obj.data.vertices) != VERTEX_COUNT:
            box.label(text=f"'{obj.name}': expects {VERTEX_COUNT} vertices, got {len(obj.data.vertices)}",
                      icon="ERROR")
        else:
            box.label(text=f"Target: {obj.name} (FLAME)", icon="CHECKMARK")

        col = layout.column()
        col.prop(props, "engine")
        if props.engine in ENGINES and ENGINES[props.engine].has_styles:
            col.prop(props, "style")
        col.prop(props, "intensity", slider=True)
        col.prop(props, "smoothing")
        layers = col.box().column(align=True)
        layers.label(text="Face Layers")
        for name in ("mouth", "eyes", "brows", "head", "emotion"):
            row = layers.row(align=True)
            row.prop(props, f"layer_{name}")
            if name != "mouth":
                sub = row.row(align=True)
                sub.active = getattr(props, f"layer_{name}")
                sub.prop(props, f"{name}_intensity", text="", slider=True)
        if props.layer_emotion:
            row = layers.row(align=True)
            row.prop(props, "emotion_preset", text="")
            row.prop(props, "emotion_strength", slider=True)
        layers.prop(props, "motion_seed")
        col.prop(props, "bake_mode")
        col.prop(props, "bake_mouth_interior")
        if props.bake_mode == "MESH_CACHE":
            col.prop(props, "cache_folder")
        else:
            col.prop(props, "keys")
        col.prop(props, "markers")
        if props.source == "STRIP":
            row = col.row(heading="All Strips on Channel")
            row.prop(props, "all_strips", text="")
            sub = row.row()
            sub.active = props.all_strips
            sub.prop(props, "strip_channel", text="")
        col.prop(props, "use_frame_range")
        if props.use_frame_range:
            row = col.row(align=True)
            row.prop(props, "frame_start")
            row.prop(props, "frame_end")
        col.prop(props, "stash_existing_action")

        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("flame_lipsync.generate", icon="SPEAKER")
        row.operator("flame_lipsync.clear", text="", icon="TRASH")


classes = (FLAMELIPSYNC_PT_main,)
