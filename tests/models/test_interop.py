"""Importing PCT_Pytorch checkpoints; save_pretrained / load_pretrained / load_model."""

import json

import pytest
import torch
from fixtures import fake_pct_state_dict, pct_keys

from pointea.errors import CheckpointError
from pointea.models import (
    convert_pct_pytorch_state_dict,
    create_model,
    from_pct_pytorch,
    load_model,
    load_pretrained,
    save_pretrained,
)


def test_key_table_is_the_published_one():
    assert len(pct_keys()) == 113


def test_pct_checkpoint_lands_in_the_right_places(tmp_path):
    state = fake_pct_state_dict()
    path = tmp_path / "model.t7"
    torch.save(state, path)
    model = from_pct_pytorch(path)
    ours = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == 2_876_136
    assert torch.equal(ours["point_embed.0.0.weight"], state["module.conv1.weight"][..., 0])
    assert torch.equal(
        ours["stages.1.lin1.weight"], state["module.gather_local_1.conv1.weight"][..., 0]
    )
    assert torch.equal(
        ours["stages.0.norm2.running_var"], state["module.gather_local_0.bn2.running_var"]
    )
    assert torch.equal(
        ours["attention.2.attention.qk_proj.weight"],
        state["module.pt_last.sa3.k_conv.weight"][..., 0],
    )
    assert torch.equal(
        ours["attention.3.transform.1.bias"], state["module.pt_last.sa4.after_norm.bias"]
    )
    assert torch.equal(ours["fuse.0.weight"], state["module.conv_fuse.0.weight"][..., 0])
    assert torch.equal(ours["head.4.bias"], state["module.linear2.bias"])
    assert torch.equal(ours["head.5.running_mean"], state["module.bn7.running_mean"])
    assert torch.equal(ours["head.8.weight"], state["module.linear3.weight"])
    assert not model.training
    with torch.no_grad():
        out = model(torch.rand(1024, 3))
    assert out.shape == (1, 40) and torch.isfinite(out).all()
    loaded, info = load_model(path)
    assert info["source"] == "pct_pytorch" and info["task"] == "classification"
    assert info["class_names"][:2] == ["airplane", "bathtub"] and len(info["class_names"]) == 40
    assert torch.equal(loaded(torch.rand(300, 3) * 0 + 0.1), model(torch.rand(300, 3) * 0 + 0.1))


def test_broken_pct_checkpoints_are_refused(tmp_path):
    state = fake_pct_state_dict()
    missing = dict(state)
    del missing["module.bn6.weight"]
    with pytest.raises(CheckpointError, match="missing keys: bn6.weight"):
        convert_pct_pytorch_state_dict(missing)
    extra = {**state, "module.extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="unexpected keys: extra.weight"):
        convert_pct_pytorch_state_dict(extra)
    shaped = {**state, "module.linear1.weight": torch.zeros(512, 1000)}
    with pytest.raises(CheckpointError, match=r"head.0.weight: expected \(512, 1024\)"):
        from_pct_pytorch(shaped)
    unshared = {**state, "module.pt_last.sa1.k_conv.weight": torch.zeros(64, 256, 1)}
    with pytest.raises(CheckpointError, match="shared"):
        convert_pct_pytorch_state_dict(unshared)
    (tmp_path / "junk.t7").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.t7"):
        from_pct_pytorch(tmp_path / "junk.t7")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "pointea-checkpoint", "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)


def test_save_and_load_pretrained_roundtrip(tmp_path):
    model = create_model("pct_cls_tiny", num_classes=4, num_samples=(16, 8), k=4).eval()
    names = ["a", "b", "c", "d"]
    folder = save_pretrained(
        model, tmp_path / "m", class_names=names, metrics={"overall_accuracy": 0.5}, num_points=64
    )
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    card = (folder / "README.md").read_text()
    assert "overall_accuracy" in card and "pct_cls_tiny" in card
    again, info = load_pretrained(folder)
    assert info["class_names"] == names and info["task"] == "classification"
    pos = torch.rand(64, 3)
    with torch.no_grad():
        assert torch.equal(model(pos), again(pos))
    same, info2 = load_model(folder)
    assert info2["source"] == "pretrained"


def test_pretrained_folder_errors(tmp_path):
    model = create_model("pct_seg_tiny", num_parts=6, num_categories=2)
    folder = save_pretrained(model, tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_config"]["embed_channels"] = 48
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match the architecture"):
        load_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="malformed JSON"):
        load_pretrained(folder)
    with pytest.raises(CheckpointError, match="not a pointea model folder"):
        load_pretrained(tmp_path)
    torch.save({"something": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a pointea model"):
        load_model(tmp_path / "other.pt")


def test_convert_cli(tmp_path, capsys):
    from pointea.cli.convert import main

    torch.save(fake_pct_state_dict(), tmp_path / "model.t7")
    assert main(["pct-pytorch", str(tmp_path / "model.t7"), str(tmp_path / "out")]) == 0
    model, info = load_model(tmp_path / "out")
    assert info["class_names"][0] == "airplane" and len(info["class_names"]) == 40
    assert model.hparams["attention"] == "self"
    (tmp_path / "bad.t7").write_bytes(b"\x00" * 10)
    assert main(["pct-pytorch", str(tmp_path / "bad.t7"), str(tmp_path / "o2")]) == 2
    assert "bad.t7" in capsys.readouterr().err


def test_safe_load_messages_and_file_mode(tmp_path):
    import os

    from pointea.serialization import atomic_torch_save, safe_torch_load

    (tmp_path / "garbage.pt").write_bytes(b"definitely not a torch file")
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        safe_torch_load(tmp_path / "garbage.pt")
    assert "weights_only=False" not in str(info.value)  # never advise the unsafe route
    with pytest.raises(CheckpointError, match="the file is empty"):
        (tmp_path / "empty.pt").write_bytes(b"")
        safe_torch_load(tmp_path / "empty.pt")
    path = atomic_torch_save({"a": torch.zeros(1)}, tmp_path / "ok.pt")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
