"""Receive a real stream live, record it, save the .blend, reopen it and report the curves.

The caller sends avatar-bridge's native stream to ``port`` once the ready file appears; this script
polls (timers never fire in background mode) until the expected frames arrived or time ran out.
"""

from __future__ import annotations

import socket
import time

import common

args = common.load_args()
import bpy  # noqa: E402

mod = common.install_extension(args["zip"])
scene = common.new_scene(args["fps"])
head = (
    common.ict_head(args["ict_folder"])
    if args["mesh"] == "ict"
    else common.generated_head(args["shape_names"])
)
rig = common.armature()
s = scene.avatar_bridge
s.target, s.armature, s.head_bone, s.neck_bone, s.neck_share = head, rig, "Head", "Neck", args["neck_share"]
s.host, s.port = "127.0.0.1", args["port"]
for src, dst in args.get("mapping", []):
    bpy.ops.avatarbridge.mapping_add(source=src, target=dst)
assert bpy.ops.avatarbridge.start() == {"FINISHED"}
assert bpy.ops.avatarbridge.record() == {"FINISHED"}
rt = mod.runtime()
common.write_json(args["ready"], {"port": rt.session.receiver.address[1]})

deadline = time.monotonic() + args["timeout"]
while rt.session.stats.frames < args["expected_frames"] and time.monotonic() < deadline:
    mod.poll_once()
    time.sleep(0.002)
stats = rt.session.stats.as_dict()
live = {kb.name: kb.value for kb in head.data.shape_keys.key_blocks[1:]}
live_head = list(rig.pose.bones["Head"].rotation_euler)
unmatched = dict(rt.unmatched)
recorded = len(rt.take.times)
assert bpy.ops.avatarbridge.stop() == {"FINISHED"}  # bakes the take, closes the socket
closed_on_stop = rt.session is None
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # the port is free again
    probe.bind(("127.0.0.1", args["port"]))

head_name = head.name
bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
assert bpy.ops.avatarbridge.start() == {"FINISHED"}
bpy.ops.wm.open_mainfile(filepath=args["blend"])  # load_pre must close the socket
closed_on_load = not mod.runtime().running

head = bpy.data.objects[head_name]
rig = bpy.data.objects["Rig"]
key = head.data.shape_keys
groups = {
    "shape_keys": common.groups_of(
        mod.keyframes.find_fcurve(key, f'key_blocks["{kb.name}"].value') for kb in key.key_blocks
    )
}
bones = {}
for bone, attr, n in (("Head", "rotation_euler", 3), ("Neck", "rotation_quaternion", 4)):
    curves = [mod.keyframes.find_fcurve(rig, f'pose.bones["{bone}"].{attr}', i) for i in range(n)]
    bones[bone] = [common.keys_of(fc) if fc else [] for fc in curves]
    groups[bone] = common.groups_of(curves)
common.write_json(
    args["result"],
    {
        "stats": stats, "recorded": recorded, "unmatched": unmatched, "live": live, "live_head": live_head,
        "closed_on_stop": closed_on_stop, "closed_on_load": closed_on_load,
        "curves": common.shape_key_curves(mod, head), "bones": bones, "groups": groups,
        "frame_end": bpy.context.scene.frame_end,
        "mapping_rows": len(bpy.context.scene.avatar_bridge.mapping),
        "fps": bpy.context.scene.render.fps,
    },
)  # fmt: skip
