"""Training and evaluation of scene semantic segmentation (S3DIS protocol).

Recipe (documented in docs/SCENES.md): every step draws ``batch_size`` training rooms at
random and, from each, ``num_points`` points uniformly without replacement (PointNet and
DGCNN train on 4096-point samples; here the sample covers the whole room rather than a
1 m block, because the network sees whole rooms at test time and external attention's
doubly normalised map makes its features insensitive to the sampling density).
AdamW with a cosine schedule, cross-entropy. After each epoch the validation rooms
(carved from the training areas, never the test area) are segmented whole, exactly;
``best.pt`` keeps the best validation mIoU. The test area is evaluated once, at the end,
with the best checkpoint: whole rooms in one exact pass, and optionally the block-and-
vote protocol, side by side, with the majority-class baseline.

Resume: each epoch's sampling and dropout draw from generators seeded by
``(seed, epoch)``, and ``last.pt`` (model, optimizer, scheduler, metrics) is written at
the end of every epoch, so a run killed at any time and resumed with ``--resume``
repeats exactly what the uninterrupted run does.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..datasets.s3dis import CLASSES, NUM_CLASSES, S3DIS
from ..datasets.synthetic_rooms import write_rooms
from ..errors import InputError, TrainingError
from ..metrics_semseg import SemSegMeter, semseg_metrics_from_confusion
from ..models import create_model
from ..models.semseg import block_vote_logits, room_features, room_logits
from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from .rundir import RunDirectory

__all__ = ["SemSegConfig", "evaluate_rooms", "train_semseg"]


@dataclass
class SemSegConfig:
    """Settings of a ``pointea-semseg`` run (saved as ``config.json``)."""

    data_root: str = "data"
    output_dir: str = "runs/semseg"
    synthetic: bool = False  # write procedural rooms into data_root when S3DIS is absent
    synthetic_rooms_per_area: int = 3
    synthetic_density: float = 150.0
    model: str = "pct_semseg_tiny"
    attention: str = "external"
    test_area: int = 5
    val_fraction: float = 0.2
    epochs: int = 20
    steps_per_epoch: int = 20
    batch_size: int = 4
    num_points: int = 4096
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    chunk_size: int = 65_536
    block_vote: bool = False
    resume: bool = False


@functools.lru_cache(maxsize=32)
def _room(ds: S3DIS, i: int) -> dict[str, np.ndarray]:
    return ds.raw(i)


def _sample_batch(ds: S3DIS, cfg: SemSegConfig, gen: np.random.Generator):
    pos, x, y, batch = [], [], [], []
    for b, i in enumerate(gen.integers(len(ds), size=cfg.batch_size)):
        r = _room(ds, int(i))
        n = len(r["label"])
        idx = gen.choice(n, size=cfg.num_points, replace=n < cfg.num_points)
        # features from the whole room's frame, then the sample
        p, f = room_features(torch.from_numpy(r["xyz"]), torch.from_numpy(r["rgb"]))
        idx_t = torch.from_numpy(idx)
        pos.append(p[idx_t])
        x.append(f[idx_t])
        y.append(torch.from_numpy(r["label"][idx]))
        batch.append(torch.full((len(idx),), b, dtype=torch.long))
    return torch.cat(pos), torch.cat(x), torch.cat(y), torch.cat(batch)


@torch.no_grad()
def evaluate_rooms(
    model: torch.nn.Module,
    ds: S3DIS,
    chunk_size: int = 65_536,
    block_vote: bool = False,
) -> dict[str, Any]:
    """Whole-room exact metrics of every room of ``ds`` (and block-vote ones if asked)."""
    model.eval()
    exact = SemSegMeter(NUM_CLASSES, CLASSES)
    voted = SemSegMeter(NUM_CLASSES, CLASSES)
    for i in range(len(ds)):
        r = _room(ds, i)
        xyz, rgb = torch.from_numpy(r["xyz"]), torch.from_numpy(r["rgb"])
        y = torch.from_numpy(r["label"])
        exact.update(room_logits(model, xyz, rgb, chunk_size).argmax(1).cpu(), y)
        if block_vote:
            voted.update(block_vote_logits(model, xyz, rgb).argmax(1).cpu(), y)
    out = {"whole_room": exact.compute(), "rooms": [ds.room_name(i) for i in range(len(ds))]}
    if block_vote:
        out["block_vote"] = voted.compute()
    return out


def majority_baseline(train: S3DIS, test: S3DIS) -> dict[str, Any]:
    """Metrics of predicting the training split's most frequent class everywhere."""
    majority = int(train.class_counts().argmax())
    counts = test.class_counts()
    cm = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
    cm[:, majority] = torch.from_numpy(counts)
    return {"class": CLASSES[majority], **semseg_metrics_from_confusion(cm, CLASSES)}


def _checkpoint(model, opt, sched, cfg: SemSegConfig, epoch: int, best: float, history) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "pointea_version": __version__,
        "task": "semseg",
        "model_name": model.name,
        "model_config": dict(model.hparams),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": epoch,
        "best_val_miou": best,
        "history": history,
        "config": dataclasses.asdict(cfg),
    }


def train_semseg(cfg: SemSegConfig, log=print) -> dict[str, Any]:
    """Train, select on validation rooms, evaluate the test area; returns the test report."""
    if cfg.num_points < 16 or cfg.batch_size < 1 or cfg.epochs < 1:
        raise InputError("num_points >= 16, batch_size >= 1 and epochs >= 1 are required")
    if cfg.synthetic:
        write_rooms(
            cfg.data_root,
            rooms_per_area=cfg.synthetic_rooms_per_area,
            density=cfg.synthetic_density,
            seed=cfg.seed,
        )
    train = S3DIS(cfg.data_root, "train", cfg.test_area, cfg.val_fraction)
    val = S3DIS(cfg.data_root, "val", cfg.test_area, cfg.val_fraction)
    test = S3DIS(cfg.data_root, "test", cfg.test_area, cfg.val_fraction)
    if len(val) == 0:
        raise InputError("val_fraction: leaves no validation room; selection needs one")
    run = RunDirectory(cfg.output_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    run.acquire()
    try:
        return _train(cfg, run, train, val, test, log)
    finally:
        run.release()


def _train(cfg, run: RunDirectory, train, val, test, log) -> dict[str, Any]:
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, attention=cfg.attention, num_classes=NUM_CLASSES).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * cfg.steps_per_epoch)
    start, best, history = 0, -math.inf, []
    if cfg.resume and run.last_path.is_file():
        ck = load_checkpoint(run.last_path)
        if ck["task"] != "semseg" or ck["model_name"] != cfg.model:
            raise TrainingError(f"{run.last_path}: belongs to another run ({ck['model_name']})")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start, best, history = ck["epoch"], ck["best_val_miou"], ck["history"]
        # records written after the checkpoint (a kill between the two) are dropped
        run.rewrite_metrics([r for r in run.read_metrics() if r.get("epoch", 0) <= start])
        log(f"resumed from {run.last_path} at epoch {start}")
    elif run.last_path.exists() and not cfg.resume:
        raise TrainingError(
            f"{run.path}: holds a run; pass --resume or choose another --output-dir"
        )
    run.write_json(run.config_path, dataclasses.asdict(cfg))
    for epoch in range(start, cfg.epochs):
        gen = np.random.default_rng([cfg.seed, epoch])
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        model.train()
        t0, losses = time.perf_counter(), []
        for _ in range(cfg.steps_per_epoch):
            pos, x, y, batch = (t.to(device) for t in _sample_batch(train, cfg, gen))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(pos, x, batch)
            loss = F.cross_entropy(logits.float(), y)
            if not torch.isfinite(loss):
                raise TrainingError(f"epoch {epoch + 1}: non-finite loss {float(loss)}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        metrics = evaluate_rooms(model, val, cfg.chunk_size)["whole_room"]
        rec = {
            "epoch": epoch + 1,
            "train_loss": sum(losses) / len(losses),
            "val_miou": metrics["mean_iou"],
            "val_oa": metrics["overall_accuracy"],
            "seconds": time.perf_counter() - t0,
        }
        history.append(rec)
        run.append_metrics(rec)
        if metrics["mean_iou"] > best:
            best = metrics["mean_iou"]
            save_checkpoint(
                _checkpoint(model, opt, sched, cfg, epoch + 1, best, history), run.best_path
            )
        save_checkpoint(
            _checkpoint(model, opt, sched, cfg, epoch + 1, best, history), run.last_path
        )
        log(json.dumps(rec))
    ck = load_checkpoint(run.best_path)
    model.load_state_dict(ck["model"])
    report = {
        "best_epoch": ck["epoch"],
        "best_val_miou": ck["best_val_miou"],
        "test_area": cfg.test_area,
        **evaluate_rooms(model, test, cfg.chunk_size, cfg.block_vote),
        "majority_baseline": majority_baseline(train, test),
    }
    run.write_json(run.test_metrics_path, report)
    return report


def report_lines(report: dict[str, Any]) -> list[str]:
    """A short human-readable summary of :func:`train_semseg`'s report."""
    lines = []
    for key in ("whole_room", "block_vote", "majority_baseline"):
        if key in report:
            m = report[key]
            lines.append(
                f"{key:>17}: OA {m['overall_accuracy']:.3f}  mAcc {m['mean_class_accuracy']:.3f}"
                f"  mIoU {m['mean_iou']:.3f}"
            )
    ious = report["whole_room"]["per_class_iou"]
    lines.append(
        "per-class IoU: "
        + ", ".join(
            f"{c} {v:.2f}" if v is not None else f"{c} -"
            for c, v in zip(CLASSES, ious, strict=True)
        )
    )
    return lines
