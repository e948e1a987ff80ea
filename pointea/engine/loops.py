"""The epoch loops: :func:`train_one_epoch` and :func:`evaluate`.

Statistics are accumulated on the device and read back once per epoch; the only
per-step read-back is the finiteness of the loss (a NaN must stop the run before the
optimiser step).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import TrainingError
from ..nn.sampling_plan import without_plan
from ..ops import host_uniform, input_checks
from ..tasks import Task, as_task
from .callbacks import Callback, TrainState
from .config import TrainConfig
from .distributed import DistContext, all_reduce_sum
from .precision import autocast
from .progress import ProgressBar
from .seeding import seed_everything

__all__ = ["NonFiniteLossError", "evaluate", "optimizer_step", "train_one_epoch"]


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite (the run stops; the last good checkpoint stays)."""


def train_one_epoch(
    model: nn.Module,
    loader: Any,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    cfg: TrainConfig,
    ctx: DistContext,
    epoch: int,
    scaler: Any = None,
    progress: bool = False,
    ckpt_hint: str = "",
    category_parts: Sequence[Sequence[int]] | None = None,
    callbacks: Callback | None = None,
    state: TrainState | None = None,
    seed: int | None = None,
) -> dict[str, float]:
    """Train ``model`` for one pass over ``loader``; returns summed-over-ranks statistics.

    The running accuracy is that of the task's predictions (for part segmentation: the
    point accuracy with predictions restricted to each shape's category parts).

    Args:
        progress: draw a bar (the caller decides whether a terminal is attached).
        callbacks / state: hooks called after each forward pass and each step.
        seed: re-seed the global generators (dropout) once the loader's iterator
            exists: a fresh iterator draws its worker base seed from them, a persistent
            one does not, and the epoch's stream must not depend on that.

    Raises:
        NonFiniteLossError: the loss was NaN/inf (unless ``cfg.skip_nonfinite``).
    """
    model.train()
    task = cfg.spec
    # loss*n, correct, n (targets), skipped -- kept on the device, read once at the end
    totals = torch.zeros(4, dtype=torch.float64, device=ctx.device)
    steps = len(loader)
    bar = ProgressBar(steps, f"epoch {epoch}/{cfg.epochs} train", enabled=progress and ctx.is_main)

    def postfix() -> dict[str, str]:
        t = totals.tolist()
        n = max(t[2], 1.0)
        return {"loss": f"{t[0] / n:.4f}", "acc": f"{100 * t[1] / n:.1f}%"}

    batches = iter(loader)
    if seed is not None:
        seed_everything(seed)
    for step, batch in enumerate(batches, start=1):
        if state is not None:
            state.step = step
        uniform = host_uniform(getattr(batch, "ptr", None))  # read on the host, before .to
        batch = batch.to(ctx.device, non_blocking=True)
        target = batch.y.view(-1)
        # The datasets validated every cloud when they were read: skip the value checks
        # (host reads) of the per-layer input validation inside the step.
        with autocast(cfg, ctx.device), input_checks(False):
            logits = task.forward(model, batch, points_per_cloud=uniform)
        if callbacks is not None:
            logits = callbacks.on_forward_end(state, batch, logits)
        loss = loss_fn(logits, target)
        finite = torch.isfinite(loss.detach()).to(torch.float64).view(1)
        if ctx.distributed:  # every rank must take the same decision
            finite = all_reduce_sum(finite, ctx) / ctx.world_size
        if float(finite) < 1.0:  # the one read-back per step
            optimizer.zero_grad(set_to_none=True)
            if cfg.skip_nonfinite:
                totals[3] += 1
                bar.update()
                continue
            bar.close()
            raise NonFiniteLossError(
                f"non-finite training loss ({float(loss.detach()):.4g}) at epoch {epoch}, step "
                f"{step}/{steps}; stopped. {ckpt_hint}Try a lower --lr, --grad-clip, or "
                "--skip-nonfinite to skip such batches"
            )
        optimizer_step(model, optimizer, loss, scaler=scaler, grad_clip=cfg.grad_clip)
        with torch.no_grad():
            n = target.numel()
            pred = task.predictions(logits.detach(), batch, category_parts)
            totals[0] += loss.detach().double() * n
            totals[1] += (pred == target).sum()
            totals[2] += n
        if callbacks is not None:
            callbacks.on_step_end(state, loss.detach())
        bar.update(postfix)
    bar.close()
    totals = all_reduce_sum(totals.cpu(), ctx)
    n = max(float(totals[2]), 1.0)
    return {
        "train_loss": float(totals[0]) / n,
        "train_accuracy": float(totals[1]) / n,
        "skipped_batches": int(totals[3]),
    }


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: Tensor,
    *,
    scaler: Any = None,
    grad_clip: float | None = None,
) -> None:
    """Backward pass and one optimiser step: through the float16 gradient scaler when
    given, with the gradient norm clipped to ``grad_clip`` when set."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        return
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    *,
    task: Task | str,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    category_parts: Sequence[Sequence[int]] | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    ctx: DistContext | None = None,
    votes: int = 1,
    vote_seed: int = 0,
    autocast: Any = None,
    progress: bool = False,
    desc: str = "eval",
    chunk_size: int = 65_536,
    block_vote: bool = False,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``loader`` (this process's shard); metrics summed over ranks.

    With ``votes > 1`` the logits of the plain pass and ``votes - 1`` passes with random
    per-axis scaling U[0.8, 1.25] of each cloud are averaged (test-time voting); the
    voting draws are seeded by ``vote_seed`` and repeatable.

    ``task``: the :class:`~pointea.tasks.Task` (or its name) whose forward pass, meter and
    evaluation apply.

    Whole scenes (``task.whole_scenes``): each sample of ``loader`` is a whole room (``pos``,
    ``rgb``, ``y``), segmented in one exact pass (:func:`~pointea.models.semseg.room_logits`,
    ``chunk_size`` points at a time); ``votes`` does not apply. With ``block_vote`` the
    rooms are also scored with the literature's 1 m block-and-vote protocol
    (:func:`~pointea.inference.blocks.block_vote_logits`), reported under ``block_vote``.

    Returns:
        the task's meter's metrics, e.g. classification: ``overall_accuracy``,
        ``mean_class_accuracy``, ``per_class_accuracy``, ``num_samples`` (+ ``loss``);
        segmentation: ``instance_miou``, ``class_miou``, ``per_category_iou``,
        ``point_accuracy``, ``num_shapes`` (+ ``loss``);
        semseg: ``overall_accuracy``, ``mean_class_accuracy``, ``mean_iou``,
        ``per_class_iou``, ``per_class_accuracy``, ``num_points``, ``num_rooms``
        (+ ``loss``, + ``block_vote``).
    """
    ctx = ctx or DistContext(device=next(model.parameters()).device)
    model.eval()
    task = as_task(task)
    if task.whole_scenes:
        return _evaluate_rooms(
            model,
            loader,
            task=task,
            num_classes=num_classes,
            class_names=class_names,
            loss_fn=loss_fn,
            ctx=ctx,
            autocast=autocast,
            chunk_size=chunk_size,
            block_vote=block_vote,
            bar=ProgressBar(len(loader), desc, enabled=progress and ctx.is_main),
        )
    meter = task.meter(num_classes, class_names, category_parts)
    loss_sum = torch.zeros(2, dtype=torch.float64, device=ctx.device)
    gen = torch.Generator().manual_seed(vote_seed)
    total = len(loader) if hasattr(loader, "__len__") else None
    bar = ProgressBar(total, desc, enabled=progress and ctx.is_main)
    for batch in loader:
        uniform = host_uniform(getattr(batch, "ptr", None))
        batch = batch.to(ctx.device)
        target = batch.y.view(-1)
        logits = None
        for v in range(max(votes, 1)):
            view = batch
            if v > 0:
                num = int(batch.num_graphs) if hasattr(batch, "num_graphs") else 0
                scale = torch.empty(num, 3).uniform_(0.8, 1.25, generator=gen).to(ctx.device)
                view = without_plan(batch.clone())  # the scaled clouds are sampled anew
                view.pos = batch.pos * scale[batch.batch]
            with autocast or contextlib.nullcontext():
                out = task.forward(model, view, points_per_cloud=uniform).float()
            logits = out if logits is None else logits + out
        logits = logits / max(votes, 1)
        if loss_fn is not None:
            loss_sum[0] += loss_fn(logits, target).double() * target.numel()
            loss_sum[1] += target.numel()
        task.update(meter, logits, batch)
        bar.update()
    bar.close()
    state = all_reduce_sum(meter.state(), ctx)
    meter.load_state(state)
    out = meter.compute()
    if loss_fn is not None:
        loss_sum = all_reduce_sum(loss_sum.cpu(), ctx)
        out["loss"] = float(loss_sum[0] / loss_sum[1]) if loss_sum[1] > 0 else None
    return out


def _evaluate_rooms(
    model,
    loader,
    *,
    task,
    num_classes,
    class_names,
    loss_fn,
    ctx,
    autocast,
    chunk_size,
    block_vote,
    bar,
) -> dict[str, Any]:
    """Whole rooms in one exact pass (and block-and-vote when asked); see :func:`evaluate`."""
    from ..inference.blocks import block_vote_logits
    from ..models.semseg import room_logits

    exact, voted = (task.meter(num_classes, class_names) for _ in range(2))
    sums = torch.zeros(3, dtype=torch.float64)  # loss * n, n, rooms
    for batch in loader:
        for room in batch.to_data_list():
            target = room.y.view(-1).to(ctx.device)
            with autocast or contextlib.nullcontext():
                logits = room_logits(model, room.pos, room.rgb, chunk_size).float()
            exact.update(logits.argmax(1), target)
            if loss_fn is not None:
                sums[0] += float(loss_fn(logits, target)) * target.numel()
                sums[1] += target.numel()
            sums[2] += 1
            if block_vote:
                with autocast or contextlib.nullcontext():
                    votes = block_vote_logits(model, room.pos, room.rgb)
                voted.update(votes.argmax(1), target)
        bar.update()
    bar.close()
    exact.load_state(all_reduce_sum(exact.state(), ctx))
    sums = all_reduce_sum(sums, ctx)
    out = exact.compute()
    out["num_rooms"] = int(sums[2])
    if loss_fn is not None:
        out["loss"] = float(sums[0] / sums[1]) if sums[1] > 0 else None
    if block_vote:
        voted.load_state(all_reduce_sum(voted.state(), ctx))
        out["block_vote"] = voted.compute()
    return out
