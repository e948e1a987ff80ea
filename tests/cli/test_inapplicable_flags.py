"""Training flags that a task would ignore are refused with one line saying why; the
scene trainer's --help and errors name the right defaults and flags."""

import pytest

from pointea.cli import data as data_cli
from pointea.cli.train import build_parser, parse_config


def _refused(capsys, argv, task):
    with pytest.raises(SystemExit) as info:
        parse_config(argv, task)
    assert info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "argv",
    [
        ["--augment"],
        ["--no-augment"],
        ["--point-dropout", "0.5"],
        ["--no-shuffle-points"],
        ["--data-format", "hdf5"],
    ],
)
def test_semseg_refuses_shape_flags(capsys, argv):
    line = _refused(capsys, [*argv, "--synthetic"], "s3dis")
    assert f"{argv[0]} does not apply to task s3dis" in line
    assert "drop it" in line


@pytest.mark.parametrize("task", ["modelnet40", "shapenetpart"])
@pytest.mark.parametrize(
    "argv",
    [
        ["--test-area", "5"],
        ["--chunk-size", "65536"],
        ["--synthetic-density", "150"],
        ["--synthetic-rooms-per-area", "3"],
    ],
)
def test_shape_trainers_refuse_scene_flags(capsys, task, argv):
    # the recipe's own default values: a flag typed by the user is refused all the same
    line = _refused(capsys, argv, task)
    assert f"{argv[0]} does not apply to task {task}" in line
    assert "only applies to s3dis" in line


def test_applicable_flags_still_accepted():
    cfg, _, given = parse_config(
        ["--synthetic", "--chunk-size", "4096", "--test-area", "2"], "s3dis"
    )
    assert (cfg.chunk_size, cfg.test_area) == (4096, 2) and "chunk_size" in given
    cfg, _, _ = parse_config(["--augment", "--point-dropout", "0.5"], "modelnet40")
    assert cfg.augment and cfg.point_dropout == 0.5
    cfg, _, _ = parse_config(["--no-shuffle-points", "--data-format", "hdf5"], "shapenetpart")
    assert cfg.shuffle_points is False and cfg.data_format == "hdf5"


def test_semseg_chunk_size_bounded(capsys):
    line = _refused(capsys, ["--synthetic", "--chunk-size", "1"], "s3dis")
    assert "--chunk-size" in line and "64" in line


@pytest.mark.parametrize("fraction", ["0.7", "0.9"])
def test_semseg_val_fraction_leaving_no_training_room_names_the_flag(capsys, fraction):
    line = _refused(capsys, ["--synthetic", "--val-fraction", fraction], "s3dis")
    assert "--val-fraction" in line and "0.66" in line
    parse_config(["--synthetic", "--val-fraction", "0.66"], "s3dis")  # one room in two
    # the full-train protocol carves nothing out: the fraction does not matter there
    parse_config(["--synthetic", "--val-fraction", "0.9", "--protocol", "full-train"], "s3dis")


def test_data_root_help_names_each_tasks_synthetic_folder():
    def data_root_help(task):
        text = " ".join(build_parser(task).format_help().split())
        return text[text.index("--data-root DIR folder") :][:100]

    assert "with --synthetic: data/rooms" in data_root_help("s3dis")
    assert "data/synthetic" not in data_root_help("s3dis")
    assert "with --synthetic: data/synthetic" in data_root_help("modelnet40")


def test_data_check_help_lists_the_datasets_it_knows(capsys):
    with pytest.raises(SystemExit):
        data_cli.main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Stanford3dDataset_v1.2_Aligned_Version (s3dis)" in text
    assert "modelnet40_ply_hdf5_2048 (modelnet40)" in text
    assert "every dataset" not in text


def test_predict_chunk_size_below_the_minimum_names_the_flag(tmp_path, capsys):
    from pointea.cli.predict import main as predict
    from pointea.models.chunks import MIN_CHUNK

    with pytest.raises(SystemExit) as exit_:
        predict([str(tmp_path / "ck.pt"), str(tmp_path / "room.txt"), "--chunk-size", "8"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and "--chunk-size" in err and str(MIN_CHUNK) in err
