"""bf16 vs float32 part labels of ``segment_large`` on dense clouds, with a trained model.

For each category of the offline part set, fresh shapes from the same generator are
sampled densely on their surfaces (the generator's parts are analytic surfaces, so
``--points`` real samples, not an upsampled copy of a 2,048-point shape), normalised as
the predictor does, and segmented once in float32 and once under bf16 autocast. Prints,
per shape: agreement of the two label maps, accuracy of each against the true parts,
and where the disagreements lie: the float32 top-2 logit margin there versus overall,
and the share of them near a part boundary (a true neighbour among the ``--k`` nearest
has another part).

    python scripts/bf16_agreement.py RUN/checkpoints/best.pt --points 100000 --shapes 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--points", type=int, default=100_000, help="points per dense shape")
    p.add_argument("--shapes", type=int, default=2, help="shapes per category")
    p.add_argument("--seed", type=int, default=123, help="the shapes' generator seed")
    p.add_argument("--k", type=int, default=8, help="neighbours for 'near a boundary'")
    p.add_argument("--chunk", type=int, default=None, help="segment_large's chunk size")
    p.add_argument("--json", help="write the per-shape rows here")
    p.add_argument(
        "--head-float32",
        action="store_true",
        help="bf16 run with segment_large(head_float32=True): the head's last two layers "
        "in float32",
    )
    args = p.parse_args(argv)

    import torch_cluster

    from pointea.datasets.shapenetpart import CATEGORY_PARTS, SHAPENET_CATEGORIES
    from pointea.datasets.synthetic.shapes import SEGMENTATION_CATEGORIES, sample_shape
    from pointea.io.geometry import prepare_points
    from pointea.metrics import predict_parts
    from pointea.models import load_model
    from pointea.models.chunks import DEFAULT_CHUNK
    from pointea.models.streaming import segment_large

    model, info = load_model(args.checkpoint)
    model.eval()
    chunk = args.chunk or DEFAULT_CHUNK
    print(
        f"model {type(model).__name__} ({sum(p.numel() for p in model.parameters()):,} "
        f"parameters) from {args.checkpoint}; {args.points:,} points per shape"
    )
    rows = []
    for ci, (name, (builder, tag_to_id)) in enumerate(SEGMENTATION_CATEGORIES.items()):
        cat = list(SHAPENET_CATEGORIES).index(name)
        rng = np.random.default_rng([args.seed, ci])
        for s in range(args.shapes):
            parts = builder(rng)
            pts, _, idx = sample_shape(
                parts, args.points, rng, cut_prob=0.15, cut_radius=(0.15, 0.3)
            )
            truth = torch.as_tensor(np.array([tag_to_id[q.tag] for q in parts])[idx])
            pos = torch.as_tensor(prepare_points(pts, None)[0], dtype=torch.float32)
            t = time.perf_counter()
            f32 = segment_large(model, pos, cat, chunk_size=chunk)
            t32 = time.perf_counter() - t
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                b16 = segment_large(
                    model, pos, cat, chunk_size=chunk, head_float32=args.head_float32
                )
            t16 = time.perf_counter() - t
            c = torch.tensor([cat])
            lab32 = predict_parts(f32, c, CATEGORY_PARTS)
            lab16 = predict_parts(b16, c, CATEGORY_PARTS)
            differ = lab32 != lab16
            own = f32[:, CATEGORY_PARTS[cat]].topk(2, dim=1).values
            margin = own[:, 0] - own[:, 1]
            nbr = torch_cluster.knn(pos, pos, args.k + 1)[1].view(-1, args.k + 1)
            boundary = (truth[nbr] != truth[:, None]).any(dim=1)
            row = {
                "category": name,
                "shape": s,
                "points": pos.size(0),
                "agree": 1 - differ.float().mean().item(),
                "acc_f32": (lab32 == truth).float().mean().item(),
                "acc_bf16": (lab16 == truth).float().mean().item(),
                "median_margin_all": margin.median().item(),
                "median_margin_disagree": margin[differ].median().item() if differ.any() else None,
                "boundary_share_all": boundary.float().mean().item(),
                "boundary_share_disagree": boundary[differ].float().mean().item()
                if differ.any()
                else None,
                "max_abs_logit_diff": (b16 - f32).abs().max().item(),
                "seconds_f32": t32,
                "seconds_bf16": t16,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    points = sum(r["points"] for r in rows)
    agree = sum(r["agree"] * r["points"] for r in rows) / points
    print(
        f"overall agreement {100 * agree:.3f} % of {points:,} points; per shape min "
        f"{100 * min(r['agree'] for r in rows):.3f} %"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"rows": rows, "overall_agree": agree, "info": str(info.get("source"))}, f, indent=1
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
