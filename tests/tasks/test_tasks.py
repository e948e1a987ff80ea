"""The task registry: one object per problem, and nothing outside it asks for a name."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch, Data

from pointea.engine.config import TrainConfig
from pointea.errors import InputError
from pointea.tasks import KINDS, TASKS, Task, get_task, task_of_kind

PACKAGE = Path(__file__).resolve().parents[2] / "pointea"
NAMES = set(TASKS) | set(KINDS)


def test_registry_lookups():
    assert get_task("modelnet40").kind == "classification"
    assert task_of_kind("semseg").name == "s3dis"
    with pytest.raises(InputError, match="not one of"):
        get_task("modelnet10")
    with pytest.raises(InputError, match="kind"):
        task_of_kind("detection")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_is_complete(name):
    task = TASKS[name]
    assert isinstance(task, Task) and task.name == name and task.kind in KINDS
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(task.recipe) <= fields, set(task.recipe) - fields
    assert set(task.refused) <= fields, set(task.refused) - fields
    cfg = TrainConfig(task=name).resolved()
    assert cfg.model == task.model and cfg.spec is task
    assert task.accepts_model(task.model)
    assert task.source and task.title and task.unit


def _string_comparisons(path: Path) -> list[str]:
    """``x == "modelnet40"``, ``kind in ("semseg", ...)``, ``{"semseg": ...}[kind]``-style
    uses of a task or kind name in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            consts = [node.left, *node.comparators]
            for c in consts:
                values = c.elts if isinstance(c, (ast.Tuple, ast.List, ast.Set)) else [c]
                for v in values:
                    if isinstance(v, ast.Constant) and v.value in NAMES:
                        found.append(f"{path.name}:{node.lineno} compares with {v.value!r}")
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            if len([k for k in keys if k in NAMES]) >= 2:
                found.append(f"{path.name}:{node.lineno} keys a dict on task names")
    return found


#: where names may appear: the tasks themselves; the datasets, whose readers, archives
#: and stand-ins are named after their dataset; the help texts of the training commands
#: (argument parsing: program, examples); the benchmarks' fixed model tables
_NAMED = ("tasks", "datasets", "bench", "cli/train.py", "cli/data.py")


def test_no_task_or_kind_name_is_compared_outside_the_tasks():
    """The engine, inference, models, metrics and the prediction / evaluation commands ask
    the task or the predictor; they never compare a task or kind name."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if not any(rel == n or rel.startswith(n + "/") for n in _NAMED):
            found += _string_comparisons(path)
    assert not found, "\n".join(found)


def test_the_checker_finds_a_comparison(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(c):\n    return c.kind == "semseg" or {"modelnet40": 1, "s3dis": 2}\n')
    assert len(_string_comparisons(bad)) == 2


@pytest.mark.parametrize("name", ["modelnet40", "shapenetpart", "s3dis"])
def test_forward_passes_keywords_in_any_model_order(name):
    """Each task calls its model with keywords, so a model's argument order cannot
    silently swap ``batch`` and ``x``."""
    task = get_task(name)
    seen = {}

    class Recorder(torch.nn.Module):
        def forward(self, **kw):
            seen.update(kw)
            return torch.zeros(1)

    sample = Data(pos=torch.rand(8, 3), y=torch.zeros(8, dtype=torch.long))
    sample.category = torch.tensor([0])
    task.forward(Recorder(), Batch.from_data_list([sample, sample]))
    assert {"pos", "batch"} <= set(seen)
    assert seen["batch"].tolist() == [0] * 8 + [1] * 8
    assert ("category" in seen) == task.has_categories


def test_predictions_restricted_to_the_category_parts():
    task = get_task("shapenetpart")
    logits = torch.tensor([[0.0, 5.0, 1.0], [0.0, 5.0, 1.0]])
    batch = Batch.from_data_list([Data(pos=torch.rand(2, 3), category=torch.tensor([0]))])
    assert task.predictions(logits, batch, [[0, 2], [1]]).tolist() == [2, 2]
    assert get_task("modelnet40").predictions(logits, batch).tolist() == [1, 1]


def _as_format_1(path):
    """Rewrite a checkpoint as the previous format wrote it: the kind under ``task``."""
    from pointea.engine import load_checkpoint
    from pointea.serialization import atomic_torch_save

    ck = load_checkpoint(path)
    ck["task"] = ck.pop("kind", ck["task"])
    ck["format_version"] = 1
    atomic_torch_save(ck, path)


@pytest.mark.e2e
def test_checkpoints_of_the_previous_format_resume_predict_and_evaluate(tmp_path):
    from pointea.cli.train import main
    from pointea.datasets import ensure_synthetic
    from pointea.engine import Callback, load_checkpoint
    from pointea.inference import Predictor, ShapePredictor, evaluate_checkpoint

    data = ensure_synthetic("modelnet40", root=tmp_path / "d", num_classes=3,
                            train_per_class=6, test_per_class=2, points=128)  # fmt: skip
    args = ["--data-root", str(data), "--model", "pct_cls_tiny", "--batch-size", "4",
            "--num-points", "64", "--no-progress", "--seed", "3", "--device", "cpu"]  # fmt: skip
    full, old = tmp_path / "full", tmp_path / "old"

    class StopAfterOne(Callback):
        def on_epoch_end(self, state, record):
            if record["epoch"] == 1:
                raise KeyboardInterrupt

    assert main([*args, "--epochs", "2", "--output-dir", str(full)]) == 0
    argv = [*args, "--epochs", "2", "--output-dir", str(old)]
    assert main(argv, callbacks=[StopAfterOne()]) == 130
    for name in ("last.pt", "best.pt"):
        _as_format_1(old / "checkpoints" / name)
    assert main(["--output-dir", str(old), "--resume", "--no-progress"]) == 0
    a = load_checkpoint(full / "checkpoints/last.pt")
    b = load_checkpoint(old / "checkpoints/last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert (b["task"], b["kind"]) == ("modelnet40", "classification")  # rewritten as format 2

    _as_format_1(old / "checkpoints/best.pt")
    predictor = Predictor.from_pretrained(old / "checkpoints/best.pt", device="cpu")
    assert isinstance(predictor, ShapePredictor) and predictor.task == "modelnet40"
    assert predictor.classify(torch.rand(100, 3).numpy()).probabilities.shape == (3,)
    res = evaluate_checkpoint(old, task="modelnet40")
    assert res["task"] == "modelnet40" and res["kind"] == "classification"
