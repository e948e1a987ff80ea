"""What loading a model or a checkpoint refuses: class names given twice; chunk sizes
too small to be useful at the library entries that take them."""

import pytest
import torch

from pointea.engine import config as engine_config
from pointea.engine.checkpoint import load_checkpoint
from pointea.errors import CheckpointError, InputError
from pointea.inference.predictor import Predictor
from pointea.models import create_model, load_model
from pointea.models.chunks import MIN_CHUNK, check_chunk_size
from pointea.models.semseg import room_logits


def _duplicated(semseg_checkpoint, tmp_path):
    ck = torch.load(semseg_checkpoint, map_location="cpu", weights_only=False)
    names = list(ck["class_names"])
    names[5] = names[2]  # e.g. two "wall"s: their predictions and counts would merge
    ck["class_names"] = names
    path = tmp_path / "dup.pt"
    torch.save(ck, path)
    return path, names[2]


def test_duplicate_class_names_refused_by_load_model(semseg_checkpoint, tmp_path):
    path, name = _duplicated(semseg_checkpoint, tmp_path)
    with pytest.raises(CheckpointError, match=f"{path}.*{name!r}.*more than once"):
        load_model(path)
    with pytest.raises(CheckpointError, match=f"{name!r}"):
        Predictor.from_pretrained(path, device="cpu")


def test_duplicate_class_names_refused_by_load_checkpoint(semseg_checkpoint, tmp_path):
    path, name = _duplicated(semseg_checkpoint, tmp_path)
    with pytest.raises(CheckpointError, match=f"{path}.*{name!r}"):
        load_checkpoint(path)
    assert load_checkpoint(semseg_checkpoint)["class_names"]  # distinct names load


def test_chunk_size_bounded_below():
    assert engine_config.MIN_CHUNK == MIN_CHUNK == 64
    assert check_chunk_size(MIN_CHUNK) == MIN_CHUNK
    for bad in (0, 1, MIN_CHUNK - 1, 100.5, True):
        with pytest.raises(InputError, match="chunk_size.*at least 64"):
            check_chunk_size(bad)
    with pytest.raises(InputError, match="--chunk-size.*at least 64"):
        check_chunk_size(8, "--chunk-size")


def test_library_entries_refuse_tiny_chunks():
    seg = create_model("pct_seg_tiny").eval()
    with pytest.raises(InputError, match="chunk_size.*64"):
        Predictor(seg, num_points=None, chunk_size=1)
    scene = create_model("pct_semseg_tiny").eval()
    xyz, rgb = torch.rand(200, 3), torch.randint(0, 256, (200, 3), dtype=torch.uint8)
    with pytest.raises(InputError, match="chunk_size.*64"):
        room_logits(scene, xyz, rgb, chunk_size=1)
    assert room_logits(scene, xyz, rgb, chunk_size=MIN_CHUNK).shape[0] == 200


def test_config_refuses_tiny_chunk_size():
    cfg = engine_config.TrainConfig(task="s3dis", chunk_size=16)
    with pytest.raises(InputError, match="--chunk-size.*64"):
        cfg.validate()
