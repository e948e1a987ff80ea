"""Importing PCT_Pytorch checkpoints; save_pretrained / load_pretrained / load_model."""

import json

import pytest
import torch
from pointea_testing import fake_pct_state_dict, pct_keys

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
        out = model(None, torch.rand(1024, 3))
    assert out.shape == (1, 40) and torch.isfinite(out).all()
    loaded, info = load_model(path)
    assert info["source"] == "pct_pytorch" and info["kind"] == "classification"
    assert info["class_names"][:2] == ["airplane", "bathtub"] and len(info["class_names"]) == 40
    assert torch.equal(
        loaded(None, torch.rand(300, 3) * 0 + 0.1), model(None, torch.rand(300, 3) * 0 + 0.1)
    )


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
    assert info["class_names"] == names and info["kind"] == "classification"
    pos = torch.rand(64, 3)
    with torch.no_grad():
        assert torch.equal(model(None, pos), again(None, pos))
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


@pytest.mark.e2e
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


# ----------------------------------------------------------------------------------------
# An independent forward of PCT_Pytorch's classifier, written from the structure of its
# published model.py and util.py (Strawberry-Eat-Mango/PCT_Pytorch, main 0199a3b: model.py
# last changed in 15fb741, util.py in e35fbb8), working directly on a state dict in that
# project's key layout. Nothing of pointea's model code is used here.


def _conv(x, w, b=None):  # Conv1d(kernel_size=1) on (B, C, N)
    return torch.einsum("oc,bcn->bon", w[..., 0] if w.dim() == 3 else w, x) + (
        0 if b is None else b[None, :, None]
    )


def _bn(x, s, name):  # BatchNorm1d in eval mode, (B, C, N) or (B, C)
    return torch.nn.functional.batch_norm(
        x, s[f"{name}.running_mean"], s[f"{name}.running_var"], s[f"{name}.weight"],
        s[f"{name}.bias"], training=False, eps=1e-5,
    )  # fmt: skip


def _fps(xyz, m):  # pointnet2_ops furthest_point_sample: first centre index 0
    b, n, _ = xyz.shape
    idx = torch.zeros(b, m, dtype=torch.long)
    dist = torch.full((b, n), 1e10)
    last = torch.zeros(b, dtype=torch.long)
    for i in range(1, m):
        d = ((xyz - xyz[torch.arange(b), last][:, None]) ** 2).sum(-1)
        dist = torch.minimum(dist, d)
        last = dist.argmax(dim=1)
        idx[:, i] = last
    return idx


def _gather(points, idx):  # util.index_points
    return points[torch.arange(points.size(0)).view(-1, *[1] * (idx.dim() - 1)), idx]


def _sample_and_group(m, k, xyz, feat):  # util.sample_and_group (kNN grouping)
    fps = _fps(xyz, m)
    new_xyz, new_feat = _gather(xyz, fps), _gather(feat, fps)
    d = ((new_xyz[:, :, None] - xyz[:, None]) ** 2).sum(-1)
    knn = d.topk(k, dim=-1, largest=False).indices
    grouped = _gather(feat, knn) - new_feat[:, :, None]
    return new_xyz, torch.cat([grouped, new_feat[:, :, None].expand(-1, -1, k, -1)], dim=-1)


def _local_op(x, s, name):  # Local_op: (B, M, K, D) -> (B, D', M)
    b, m, k, d = x.shape
    y = x.reshape(b * m, k, d).transpose(1, 2)
    y = torch.relu(_bn(_conv(y, s[f"{name}.conv1.weight"]), s, f"{name}.bn1"))
    y = torch.relu(_bn(_conv(y, s[f"{name}.conv2.weight"]), s, f"{name}.bn2"))
    return y.amax(dim=-1).view(b, m, -1).transpose(1, 2)


def _sa_layer(x, s, name):  # SA_Layer (offset attention)
    q = _conv(x, s[f"{name}.q_conv.weight"]).transpose(1, 2)
    kk = _conv(x, s[f"{name}.k_conv.weight"])
    v = _conv(x, s[f"{name}.v_conv.weight"], s[f"{name}.v_conv.bias"])
    att = torch.softmax(q @ kk, dim=-1)
    att = att / (1e-9 + att.sum(dim=1, keepdim=True))
    r = v @ att
    t = _conv(x - r, s[f"{name}.trans_conv.weight"], s[f"{name}.trans_conv.bias"])
    return x + torch.relu(_bn(t, s, f"{name}.after_norm"))


def pct_pytorch_forward(state, clouds):
    """PCT_Pytorch's ``Pct.forward`` in eval mode; ``clouds`` ``(B, N, 3)`` -> ``(B, 40)``."""
    s = {k.removeprefix("module."): v for k, v in state.items()}
    x = clouds.transpose(1, 2)
    x = torch.relu(_bn(_conv(x, s["conv1.weight"]), s, "bn1"))
    x = torch.relu(_bn(_conv(x, s["conv2.weight"]), s, "bn2")).transpose(1, 2)
    xyz, grouped = _sample_and_group(512, 32, clouds, x)
    f0 = _local_op(grouped, s, "gather_local_0")
    _, grouped = _sample_and_group(256, 32, xyz, f0.transpose(1, 2))
    f1 = _local_op(grouped, s, "gather_local_1")
    y = torch.relu(_bn(_conv(f1, s["pt_last.conv1.weight"]), s, "pt_last.bn1"))
    y = torch.relu(_bn(_conv(y, s["pt_last.conv2.weight"]), s, "pt_last.bn2"))
    outs = []
    for i in range(1, 5):
        y = _sa_layer(y, s, f"pt_last.sa{i}")
        outs.append(y)
    y = torch.cat([*outs, f1], dim=1)
    y = _bn(_conv(y, s["conv_fuse.0.weight"]), s, "conv_fuse.1")
    y = torch.nn.functional.leaky_relu(y, 0.2).amax(dim=-1)
    y = torch.nn.functional.leaky_relu(_bn(y @ s["linear1.weight"].T, s, "bn6"), 0.2)
    y = y @ s["linear2.weight"].T + s["linear2.bias"]
    y = torch.nn.functional.leaky_relu(_bn(y, s, "bn7"), 0.2)
    return y @ s["linear3.weight"].T + s["linear3.bias"]


def _scaled_pct_state(seed=1):
    """Random tensors in the exact key layout, shapes and dtypes of the released
    checkpoint (tests/data/pct_pytorch_checkpoint_keys.tsv), scaled by fan-in so that the
    activations neither vanish nor explode over the network's depth."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape, dtype in pct_keys():
        if dtype == "int64":
            state[key] = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) * 0.5 + 0.75
        elif key.endswith("running_mean") or key.endswith(".bias"):
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) == 1:  # BatchNorm weight
            state[key] = torch.rand(shape, generator=g) * 0.5 + 0.75
        else:
            state[key] = torch.randn(shape, generator=g) / shape[1] ** 0.5
    for i in range(1, 5):  # one tensor for query and key, as SA_Layer ties them
        state[f"module.pt_last.sa{i}.k_conv.weight"] = state[f"module.pt_last.sa{i}.q_conv.weight"]
    return state


def test_imported_checkpoint_gives_the_logits_of_pct_pytorchs_own_forward():
    state = _scaled_pct_state()
    g = torch.Generator().manual_seed(3)
    direction = torch.randn(2, 1024, 3, generator=g)
    radius = 0.3 + 0.7 * torch.rand(2, 1024, 1, generator=g)  # no point near the origin
    clouds = direction / direction.norm(dim=-1, keepdim=True) * radius
    with torch.no_grad():
        want = pct_pytorch_forward(state, clouds)
        model = from_pct_pytorch(state)
        got = model(pos=clouds.reshape(-1, 3), batch=torch.arange(2).repeat_interleave(1024))
    assert want.shape == got.shape == (2, 40)
    assert float(want.std()) > 0.1  # the logits are not all the same
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    assert torch.equal(got.argmax(1), want.argmax(1))
