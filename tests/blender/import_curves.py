"""Import exported curve files through the add-on's operator and report the keyframes."""

from __future__ import annotations

import importlib

import common

args = common.load_args()
import bpy  # noqa: E402

mod = common.install_extension(args["zip"])
importer = importlib.import_module(mod.__name__ + ".importer")
out = {}
for case in args["cases"]:
    scene = common.new_scene(args["fps"])
    head = (
        common.ict_head(args["ict_folder"])
        if case["mesh"] == "ict"
        else common.generated_head(case["shape_names"])
    )
    scene.avatar_bridge.target = head
    for src, dst in case.get("mapping", []):
        bpy.ops.avatarbridge.mapping_add(source=src, target=dst)
    result = importer.import_curves(scene, case["csv"], au_mapping=case.get("au_mapping"))
    op = bpy.ops.avatarbridge.import_curves(filepath=case["csv"], au_mapping=case.get("au_mapping") or "")
    out[case["name"]] = {
        "result": result, "operator": sorted(op), "curves": common.shape_key_curves(mod, head),
        "frame_end": scene.frame_end,
    }  # fmt: skip
    try:  # a bad file is reported; bpy.ops turns an operator's ERROR report into RuntimeError
        bpy.ops.avatarbridge.import_curves(filepath=args["bad_csv"])
        out[case["name"]]["bad_file"] = "accepted"
    except RuntimeError as e:
        out[case["name"]]["bad_file"] = str(e)
common.write_json(args["result"], out)
