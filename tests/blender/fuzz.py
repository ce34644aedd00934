"""Survive a flood of random and malformed datagrams, then apply the valid frames sent after it.

The caller sends in batches and waits for the progress file to count each batch, so every datagram
is accounted for; the script stops once the frame ``last_index`` has been applied.
"""

from __future__ import annotations

import time

import common

args = common.load_args()
import bpy  # noqa: E402

mod = common.install_extension(args["zip"])
scene = common.new_scene(30)
head = common.generated_head(args["shape_names"])
s = scene.avatar_bridge
s.target, s.host, s.port = head, "127.0.0.1", args["port"]
assert bpy.ops.avatarbridge.start() == {"FINISHED"}
rt = mod.runtime()
common.write_json(args["ready"], {"port": rt.session.receiver.address[1]})

deadline, seen = time.monotonic() + args["timeout"], -1
while rt.session.stats.last_frame != args["last_index"] and time.monotonic() < deadline:
    mod.poll_once()
    if rt.session.stats.packets != seen:
        seen = rt.session.stats.packets
        common.write_json(args["progress"], {"packets": seen})
    time.sleep(0.001)
result = {
    "stats": rt.session.stats.as_dict(),
    "live": {kb.name: kb.value for kb in head.data.shape_keys.key_blocks[1:]},
    "running": rt.running,
}
assert bpy.ops.avatarbridge.stop() == {"FINISHED"}
common.write_json(args["result"], result)
