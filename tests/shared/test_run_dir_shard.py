"""Run folders that count up (runs/predict -> runs/predict2 unless --exist-ok) and --shard I/N."""

import csv
import json
import random
import shutil

import pytest

from polyhead.cli import main
from polyhead.errors import InputError
from polyhead.io import SourceItem
from polyhead.run_dir import holds_results, next_run_dir
from polyhead.shard import parse_shard, shard_suffix, split_shard


def write_summary(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.csv").write_text("file,name,status,problem\n")


def test_next_run_dir_counts_up_like_ultralytics(tmp_path):
    run = tmp_path / "runs" / "predict"
    assert next_run_dir(run) == run  # absent
    run.mkdir(parents=True)
    assert next_run_dir(run) == run  # empty
    (run / "notes.txt").write_text("mine")
    (run / "other.json").write_text('{"a": 1}')  # another program's JSON: not a run
    assert next_run_dir(run) == run
    write_summary(run)
    assert next_run_dir(run) == tmp_path / "runs" / "predict2"
    assert next_run_dir(run, exist_ok=True) == run
    write_summary(tmp_path / "runs" / "predict2")
    (tmp_path / "runs" / "predict3").write_text("a file")  # taken: a file
    assert next_run_dir(run) == tmp_path / "runs" / "predict4"


def test_an_earlier_output_json_counts_as_a_run(tmp_path):
    (tmp_path / "a.json").write_text('{"source": "a.jpg", "schema_version": 1}')
    assert holds_results(tmp_path)


@pytest.mark.parametrize("text", ["1", "4/4", "-1/4", "a/b", "1/0", "0/"])
def test_parse_shard_refuses(text):
    with pytest.raises(InputError, match="--shard"):
        parse_shard(text)


def items_in(root, names):
    return [SourceItem(root / n, "image") for n in names]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40])
def test_shards_cover_every_input_once(tmp_path, n):
    names = [f"d{k % 3}/img_{k:03d}.jpg" for k in range(23)]
    items = items_in(tmp_path, names)
    shards = [split_shard(items, [i.path for i in items], (i, n))[0] for i in range(n)]
    seen = [str(i.path) for s in shards for i in s]
    assert sorted(seen) == sorted(str(i.path) for i in items)  # union == all, no duplicates
    assert len(seen) == len(set(seen))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_shards_do_not_depend_on_listing_order_or_mount_point(tmp_path):
    names = [f"img_{k:03d}.jpg" for k in range(17)]
    a = items_in(tmp_path / "mnt" / "a" / "data", names)
    shuffled = names[:]
    random.Random(3).shuffle(shuffled)
    b = items_in(tmp_path / "other" / "data", shuffled)
    for i in range(3):
        mine_a = {x.path.name for x in split_shard(a, [x.path for x in a], (i, 3))[0]}
        mine_b = {x.path.name for x in split_shard(b, [x.path for x in b], (i, 3))[0]}
        assert mine_a == mine_b
    assert shard_suffix((2, 3)) == "-shard2of3" and shard_suffix(None) == ""


# ---------------------------------------------------------------- through the CLI


def predict(src, out, weights, *extra):
    return main(["driving", "predict", str(src), "--out", str(out), "--weights", str(weights), *extra])


def test_second_run_goes_to_a_new_folder(road_images, tiny_weights, tmp_path, capsys):
    out = tmp_path / "runs" / "predict"
    assert predict(road_images, out, tiny_weights) == 0
    assert predict(road_images, out, tiny_weights) == 0
    assert "-> " + str(tmp_path / "runs" / "predict2") in capsys.readouterr().out
    for folder in (out, tmp_path / "runs" / "predict2"):
        assert sorted(p.name for p in folder.glob("*.json")) == ["road0.json", "road1.json", "road2.json"]
    before = (out / "road0.json").stat().st_mtime_ns
    assert predict(road_images, out, tiny_weights, "--exist-ok") == 0
    assert (out / "road0.json").stat().st_mtime_ns >= before and not (tmp_path / "runs" / "predict3").exists()
    assert predict(road_images, out, tiny_weights, "--resume") == 0  # a resumed run continues in place
    assert not (tmp_path / "runs" / "predict3").exists()


def test_shards_share_one_folder_with_no_overlap(road_images, tiny_weights, tmp_path):
    src = road_images
    for k in range(3, 7):  # 7 images over 3 shards
        shutil.copy(src / "road0.jpg", src / f"road{k}.jpg")
    out = tmp_path / "shared"
    for i in range(3):
        assert predict(src, out, tiny_weights, "--shard", f"{i}/3", "--save-coco", "--save-txt") == 0
    done = []
    for i in range(3):
        with open(out / f"summary-shard{i}of3.csv", newline="") as f:
            done += [r["name"] for r in csv.DictReader(f)]
        assert (out / "coco" / f"results-shard{i}of3.json").is_file()
    assert sorted(done) == [f"road{k}" for k in range(7)]  # union == all, each once
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(done)
    assert sorted(p.stem for p in (out / "labels").glob("*.txt")) == sorted(done)
    ids = [
        im["id"]
        for i in range(3)
        for im in json.loads((out / "coco" / f"images-shard{i}of3.json").read_text())["images"]
    ]
    assert sorted(ids) == list(range(1, 8))  # image ids are global positions: shards merge
    assert not (out / "summary.csv").exists()


def test_a_bad_shard_is_one_line(road_images, tiny_weights, tmp_path, capsys):
    assert predict(road_images, tmp_path / "o", tiny_weights, "--shard", "3/3") == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert not (tmp_path / "o").exists()
