"""Record a take without the Blender UI, where timers never run: poll the add-on by hand.

    blender -b character.blend --python examples/blender_record_headless.py -- --seconds 20 --out take.blend

Needs the avatar_bridge extension enabled in that Blender and the scene's Avatar Bridge settings
(face mesh, optional armature) saved in character.blend. Meanwhile, in another terminal:

    avatar-bridge live --source 0 --sink osc://127.0.0.1:9100 --profile arkit52
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import bpy

argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=float, default=10.0, help="how long to record")
parser.add_argument("--out", required=True, help="where to save the .blend with the take")
parser.add_argument("--module", default="bl_ext.user_default.avatar_bridge", help="the add-on's module")
args = parser.parse_args(argv)

addon = importlib.import_module(args.module)
bpy.ops.avatarbridge.start()
bpy.ops.avatarbridge.record()
end = time.monotonic() + args.seconds
while time.monotonic() < end:
    addon.poll_once()
    time.sleep(1 / 120)
stats = addon.runtime().session.stats
bpy.ops.avatarbridge.stop()  # bakes the take and closes the socket
print(f"received {stats.frames} frames, dropped {stats.dropped_total} datagrams")
bpy.ops.wm.save_as_mainfile(filepath=args.out)
