"""The spill file of streaming segmentation: same logits, deleted afterwards, bad folders."""

import os
import sys
from pathlib import Path

import pytest
import torch
from pointea_testing import nontrivial_segmenter

from pointea.errors import DataError, InputError
from pointea.models import streaming
from pointea.models.spill import SpillFile
from pointea.models.streaming import segment_large

ROW = 128 * 4  # pct_seg_tiny's first head layer: 128 float32 per point


def _cloud(n=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g) * 2 - 1


def _open_spill_files() -> list[str]:
    """Targets of this process's open descriptors that are spill files."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/fd")
    targets = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return [t for t in targets if "pointea-spill-" in t]


def test_spill_equals_memory_cache_bit_for_bit(tmp_path):
    model, pos = nontrivial_segmenter(), _cloud()
    in_memory = segment_large(model, pos, 1, chunk_size=512, cache_bytes=3000 * ROW)
    on_disk = segment_large(
        model, pos, 1, chunk_size=512, cache_bytes=0, spill=True, spill_dir=tmp_path
    )
    assert torch.equal(on_disk, in_memory)


@pytest.mark.parametrize("cached_rows", [0, 700, 1024])
def test_spill_equals_recompute(tmp_path, cached_rows):
    # a cache boundary inside a chunk (700) and on one (1024); the rest spilled or not
    model, pos = nontrivial_segmenter(), _cloud()
    with torch.no_grad():
        expect = model(None, pos, category=torch.tensor([2]))
    kwargs = dict(chunk_size=512, cache_bytes=cached_rows * ROW, spill_dir=tmp_path)
    spilled = segment_large(model, pos, 2, spill=True, **kwargs)
    recomputed = segment_large(model, pos, 2, **kwargs)  # the default: no spill
    assert list(tmp_path.iterdir()) == []
    # the same products on the same rows; only a GEMM's blocking over other rows of the
    # chunk could make them differ, so they agree far below the forward's tolerance
    assert torch.allclose(spilled, recomputed, atol=1e-6, rtol=0)
    assert torch.allclose(spilled, expect, atol=1e-5, rtol=1e-5)


def test_spill_files_are_open_while_needed_and_never_named_on_disk(tmp_path, monkeypatch):
    model, pos = nontrivial_segmenter(num_attention_layers=3), _cloud()
    seen = []
    rewind = SpillFile.rewind

    def spy(self):
        rewind(self)
        # the files live only as open handles: no name in the folder
        assert list(tmp_path.iterdir()) == []
        seen.append(
            sorted(
                (os.fstat(f._file.fileno()).st_size, f.path.name)
                for f in live
                if f._file is not None
            )
        )

    live = []
    enter = SpillFile.__enter__

    def track(self):
        live.append(enter(self))
        return live[-1]

    monkeypatch.setattr(SpillFile, "__enter__", track)

    monkeypatch.setattr(SpillFile, "rewind", spy)
    segment_large(
        model, pos, 0, chunk_size=512, cache_bytes=1000 * ROW, spill=True, spill_dir=tmp_path
    )
    # the last rewind (the head terms' file, before the logits pass): the outputs of
    # attention layers 0 and 1 (3000 x 32 floats each) and the 2000 uncached head terms
    assert [size for size, _ in seen[-1]] == [3000 * 32 * 4] * 2 + [2000 * ROW]
    assert all(name.startswith("pointea-spill-") for _, name in seen[-1])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layers", [1, 2, 3, 4])
def test_layer_outputs_spilled_equal_recomputed_bit_for_bit(tmp_path, layers):
    model, pos = nontrivial_segmenter(num_attention_layers=layers), _cloud()
    kwargs = dict(chunk_size=512, cache_bytes=2**20)
    stats = {}
    spilled = segment_large(model, pos, 2, spill=True, spill_dir=tmp_path, stats=stats, **kwargs)
    recomputed = segment_large(model, pos, 2, spill=False, **kwargs)
    assert stats["layers_spilled"] == (layers > 1)
    assert torch.equal(spilled, recomputed)


def test_spill_file_is_deleted_when_a_pass_raises(tmp_path, monkeypatch):
    model, pos = nontrivial_segmenter(), _cloud()

    def fail(self, pre, out=None):
        # both files are open when this runs (layer 0's outputs and the head terms),
        # with no name left in the folder
        assert len(_open_spill_files()) == 2
        assert list(tmp_path.iterdir()) == []
        raise RuntimeError("boom in the logits pass")

    monkeypatch.setattr(streaming._SegmentPlan, "head_rest", fail)
    with pytest.raises(RuntimeError, match="boom"):
        segment_large(model, pos, 0, chunk_size=512, cache_bytes=0, spill=True, spill_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_spill_falls_back_to_recompute_without_space(tmp_path, monkeypatch):
    model, pos = nontrivial_segmenter(), _cloud()
    expect = segment_large(model, pos, 0, chunk_size=512, cache_bytes=0, spill=False)
    monkeypatch.setattr(streaming, "spill_space", lambda directory: 1000)
    with pytest.warns(UserWarning, match="spill_dir.*recomputing"):
        got = segment_large(
            model, pos, 0, chunk_size=512, cache_bytes=0, spill=True, spill_dir=tmp_path
        )
    assert torch.equal(got, expect)
    assert list(tmp_path.iterdir()) == []


def test_spill_dir_must_exist(tmp_path):
    model, pos = nontrivial_segmenter(), _cloud(300)
    with pytest.raises(InputError, match="spill_dir.*missing"):
        segment_large(model, pos, 0, cache_bytes=0, spill=True, spill_dir=tmp_path / "missing")
    # no spill needed (everything cached, one chunk): the folder is not looked at
    segment_large(model, pos, 0, spill=True, spill_dir=tmp_path / "missing")
    with pytest.raises(InputError, match="cache_bytes"):
        segment_large(model, pos, 0, cache_bytes=-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_spill_file_round_trip_and_truncation(tmp_path, dtype):
    rows = torch.randn(10, 4, 3).to(dtype)
    with SpillFile(tmp_path, (4, 3), dtype, capacity=6) as store:
        store.write(rows[:6])
        store.write(rows[6:])
        store.rewind()
        out = torch.empty(6, 4, 3, dtype=dtype)
        assert torch.equal(store.read_into(out), rows[:6])
        assert torch.equal(store.read_into(out[:4]), rows[6:])
        with pytest.raises(DataError, match="ended after 0 of"):
            store.read_into(out[:1])
        with pytest.raises(InputError, match="rows: expected"):
            store.write(torch.zeros(2, 4, 2, dtype=dtype))
        with pytest.raises(InputError, match="contiguous"):
            store.read_into(torch.empty(3, 4, 6, dtype=dtype)[..., ::2])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("chunk_size", [64, 1000, 2048, 4096])
def test_segment_large_chunk_size_independent(chunk_size):
    model, pos = nontrivial_segmenter(), _cloud()
    reference = segment_large(model, pos, 1, chunk_size=3000)  # one chunk
    got = segment_large(model, pos, 1, chunk_size=chunk_size, cache_bytes=1500 * ROW)
    assert torch.allclose(got, reference, atol=2e-6, rtol=1e-6), (got - reference).abs().max()


def test_spill_on_the_test_device(tmp_path, device):
    # on a GPU the rows go through a host buffer; on the CPU they are written directly
    model, pos = nontrivial_segmenter().to(device), _cloud().to(device)
    with torch.no_grad():
        expect = model(None, pos, category=torch.tensor([1], device=device))
    got = segment_large(
        model, pos, 1, chunk_size=512, cache_bytes=600 * ROW, spill=True, spill_dir=tmp_path
    )
    assert got.device == pos.device
    assert torch.allclose(got, expect, atol=1e-4, rtol=1e-4), (got - expect).abs().max()
    assert list(tmp_path.iterdir()) == []


class _FullDisk:
    """A spill file's handle whose writes fail as on a full disk."""

    def __init__(self, file):
        self.file = file

    def write(self, data):
        raise OSError(28, "No space left on device")

    def close(self):
        self.file.close()


def test_spill_write_failure_names_the_file_and_cleans_up(tmp_path):
    store = SpillFile(tmp_path, (4,), torch.float32, capacity=2)
    with pytest.raises(OSError, match="pointea-spill-.*spill=False") as info, store:
        store._file = _FullDisk(store._file)
        store.write(torch.zeros(2, 4))
    assert info.value.errno == 28
    assert list(tmp_path.iterdir()) == []


def test_staging_buffer_is_page_locked_for_cuda_rows_only(tmp_path, monkeypatch):
    from pointea.models import spill

    made = []
    real_empty = torch.empty

    def empty(*shape, pin_memory=False, **kw):
        made.append(pin_memory)
        return real_empty(*shape, **kw)  # no CUDA here: record the request only

    monkeypatch.setattr(spill.torch, "empty", empty)
    for device, pinned in (("cpu", False), ("cuda", True)):
        with SpillFile(tmp_path, (4,), torch.float32, capacity=8) as sf:
            assert sf._host_rows(3, torch.device(device)).shape == (3, 4)
        assert made[-1] is pinned
