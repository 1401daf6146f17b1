"""Names from data files never read or write outside their folder; YAML and JSON are read within limits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from visionloop.core.errors import VisionloopError
from visionloop.formats._paths import (
    ImageFinder,
    UnsafePathError,
    YamlLimitError,
    read_json,
    read_yaml,
    resolve_inside,
    safe_export_name,
    safe_folder_name,
    unique_export_names,
)
from visionloop.formats.base import Sample, copy_image, find_image


@pytest.mark.parametrize("name", [
    "../x.jpg", "../../x/secret.jpg", "/abs/x.jpg", "C:\\x.jpg", "c:x.jpg", "\\\\host\\share\\x.jpg", "a/../../b.jpg",
    "a\x00b.jpg", "x" * 5000, "x" * 300 + ".jpg", "", ".", "./", 5, None, ["a"],
])
def test_resolve_inside_refuses_unsafe_names(tmp_path: Path, name: object) -> None:
    with pytest.raises(UnsafePathError) as e:
        resolve_inside(tmp_path, name)
    assert isinstance(e.value, VisionloopError) and isinstance(e.value, ValueError)
    assert e.value.name == name and e.value.root == tmp_path and e.value.reason
    assert len(str(e.value)) < 400  # a 5,000-character name is shortened in the message


@pytest.mark.parametrize(("name", "rel"), [
    ("a.jpg", "a.jpg"), ("sub\\b.jpg", "sub/b.jpg"), ("./a//b.jpg", "a/b.jpg"), ("a/../c.jpg", "c.jpg"),
])
def test_resolve_inside_keeps_safe_names(tmp_path: Path, name: str, rel: str) -> None:
    assert resolve_inside(tmp_path, name) == tmp_path / rel


def test_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (4, 4)).save(outside / "secret.jpg")
    root = tmp_path / "dataset"
    root.mkdir()
    os.symlink(outside, root / "link")
    os.symlink(outside / "secret.jpg", root / "file.jpg")
    for name in ("link/secret.jpg", "file.jpg", "link"):
        with pytest.raises(UnsafePathError, match="symbolic link"):
            resolve_inside(root, name)
    (root / "inner").mkdir()
    os.symlink(root / "inner", root / "alias")  # a link that stays inside is fine
    assert resolve_inside(root, "alias/x.jpg") == root / "alias/x.jpg"


def test_finders_refuse_escapes_and_find_inside(tmp_path: Path) -> None:
    (tmp_path / "data" / "images").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "data" / "images" / "a.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.jpg")
    finder = ImageFinder([tmp_path / "data" / "images"])
    assert finder.find("a.jpg") == tmp_path / "data/images/a.jpg"
    assert finder.find("a") == tmp_path / "data/images/a.jpg"
    assert finder.find("b.jpg") is None
    for bad in ("../../secret.jpg", str(tmp_path / "secret.jpg"), "x" * 5000, "../../secret"):
        with pytest.raises(UnsafePathError):
            finder.find(bad)
    assert find_image(tmp_path / "data", "a.jpg") == tmp_path / "data/images/a.jpg"
    with pytest.raises(UnsafePathError):
        find_image(tmp_path / "data", "../secret.jpg")


@pytest.mark.parametrize(("name", "safe"), [
    ("../../x/secret.jpg", "x/secret.jpg"), ("/abs/x.jpg", "abs/x.jpg"), ("C:\\win\\x.jpg", "C_/win/x.jpg"),
    ("a/../b.jpg", "b.jpg"), ("..", "unnamed"), (".hidden.jpg", "_hidden.jpg"), ("nul.jpg", "_nul.jpg"),
    ('a<b>:c"|?*.jpg', "a_b__c____.jpg"), ("tab\there.png", "tab_here.png"), ("ok/name.jpg", "ok/name.jpg"),
])
def test_safe_export_name(name: str, safe: str) -> None:
    assert safe_export_name(name) == safe
    assert safe_export_name(safe) == safe  # idempotent


def test_safe_folder_name_is_one_level() -> None:
    assert safe_folder_name("../../../escaped") == "_._.._.._escaped"
    assert safe_folder_name("..") == "_"
    assert "/" not in safe_folder_name("a/b\\c") and safe_folder_name("") == "_"
    long = safe_folder_name("é" * 400 + ".jpg")
    assert len(long.encode()) <= 200 and long.endswith(".jpg")
    assert long == safe_folder_name("é" * 400 + ".jpg") != safe_folder_name("é" * 401 + ".jpg")  # stable, distinct


def test_unique_export_names_never_collide() -> None:
    names = ["../a.jpg", "a.jpg", "A.JPG", "b.jpg", "x/../b.jpg"]
    out = unique_export_names(names)
    assert len({n.lower() for n in out}) == len(names)
    assert out[3] != "b.jpg" and out[3].startswith("b~")
    assert unique_export_names(names) == out  # stable
    assert unique_export_names(["a.jpg", "a.jpg"], keys=["1234567890", "abcdef0123"]) == ["a~12345678.jpg",
                                                                                            "a~abcdef01.jpg"]
    assert unique_export_names(["k", "k"], keys=["same", "same"]) == ["k~same", "k~same-1"]
    assert unique_export_names(["a/b", "a_b", "c"], folders=True)[2] == "c"


def test_copy_image_stays_inside_the_output_folder(tmp_path: Path) -> None:
    src = tmp_path / "src.jpg"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src)
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    dest = copy_image(Sample(name="../../x/secret.jpg", image_path=src), out / "images")
    assert dest == out / "images" / "x" / "secret.jpg" and dest.is_file()
    assert not (tmp_path / "x").exists()
    os.symlink(tmp_path, out / "trap")
    with pytest.raises(UnsafePathError):
        copy_image(Sample(name="trap/y.jpg", image_path=src), out)


def test_yaml_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for k in range(1, 9):
        prev, cur = chr(ord("a") + k - 1), chr(ord("a") + k)
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    lines.append("names: [*i]")
    bomb = tmp_path / "data.yaml"
    bomb.write_text("\n".join(lines))
    assert bomb.stat().st_size < 1024
    with pytest.raises(YamlLimitError, match="YAML bomb"):
        read_yaml(bomb)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(yaml.YAMLError):
        read_yaml(deep)
    ok = tmp_path / "ok.yaml"
    ok.write_text("base: &b {x: 1}\nnames: {0: cat, 1: dog}\ntrain: *b\n")
    assert read_yaml(ok) == {"base": {"x": 1}, "names": {0: "cat", 1: "dog"}, "train": {"x": 1}}
    code = tmp_path / "code.yaml"
    code.write_text("!!python/object/apply:os.system ['true']")
    with pytest.raises(yaml.YAMLError):
        read_yaml(code)


def test_deep_json_is_a_decode_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        read_json(deep)
    ok = tmp_path / "ok.json"
    ok.write_text('{"a": [1]}')
    assert read_json(ok) == {"a": [1]}
