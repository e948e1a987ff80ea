#!/usr/bin/env bash
# Whole-room semantic segmentation on offline procedural rooms in the S3DIS layout:
# write the rooms, train pct_semseg_tiny (external attention) on random 2048-point
# samples of the training rooms (areas 1-4 and 6, minus carved validation rooms), select
# on validation mIoU, then segment every point of every Area-5 room in one exact pass
# (and with the 1 m block-and-vote protocol), print both beside the majority-class
# baseline, and render a test room (top and perspective; truth, prediction, errors).
#
#   bash scripts/demo_semseg.sh                          # offline rooms
#   bash scripts/demo_semseg.sh --data-root data         # the real S3DIS (no --synthetic)
#   bash scripts/demo_semseg.sh --epochs 20              # any pointea-semseg flag
#
# Output: runs/demo-semseg (override with POINTEA_DEMO_DIR). See docs/SCENES.md for the
# numbers and the time it takes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh

out="${POINTEA_DEMO_DIR:-runs/demo-semseg}"
data=(--synthetic --synthetic-rooms-per-area 2 --data-root data/rooms)
for arg in "$@"; do
  case "$arg" in --data-root|--data-root=*) data=() ;; esac
done
rm -rf "$out"

.venv/bin/pointea-semseg "${data[@]}" --model pct_semseg_tiny --epochs 8 \
  --steps-per-epoch 10 --batch-size 4 --num-points 2048 --lr 5e-3 --val-fraction 0.2 \
  --block-vote --output-dir "$out" "$@"

echo
echo "rendering the first test room:"
.venv/bin/python - "$out" <<'PY'
import json
import sys
from pathlib import Path

import numpy as np
import torch

from pointea.datasets import S3DIS
from pointea.models import create_model
from pointea.models.semseg import segment_room
from pointea.visualization.scenes import save_room_comparison

out = Path(sys.argv[1])
cfg = json.loads((out / "config.json").read_text())
ck = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
model = create_model(ck["model_name"], **ck["model_config"])
model.load_state_dict(ck["model"])
test = S3DIS(cfg["data_root"], "test", cfg["test_area"], cfg["val_fraction"])
room = test.raw(0)
points = np.concatenate([room["xyz"], room["rgb"].astype(np.float32)], axis=1)
pred = segment_room(model.eval(), points)
path = save_room_comparison(
    out / "room.png", room["xyz"], room["rgb"], room["label"], pred, title=test.room_name(0)
)
print(f"wrote {path} ({len(pred):,} points, {np.mean(pred == room['label']):.1%} correct)")
PY
