import json

from typer.testing import CliRunner

from tests.conftest import make_image_bytes
from visionloop.cli.main import app

runner = CliRunner()


def run(*args: str, ok: bool = True):
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def make_folders(root, per_class=4):
    for k, cls in enumerate(["left", "right", "up"]):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            (root / cls / f"{i}.jpg").write_bytes(make_image_bytes(seed=100 * k + i))


def test_init_import_stats_classes(tmp_path):
    src = tmp_path / "src"
    make_folders(src)
    proj = str(tmp_path / "p")
    assert json.loads(run("init", proj, "--task", "classification", "--json").stdout)["task"] == "classification"
    report = json.loads(run("import", proj, str(src), "--json").stdout)
    assert report["format"] == "class_folders" and report["images_added"] == 12
    stats = json.loads(run("stats", proj, "--json").stdout)
    assert stats["classes"] == {"left": 4, "right": 4, "up": 4}
    run("classes", "flag", proj, "left", "--orientation-sensitive")
    classes = json.loads(run("classes", "list", proj, "--json").stdout)
    assert next(c for c in classes if c["name"] == "left")["orientation_sensitive"] is True
    assert [c["key"] for c in classes] == ["1", "2", "3"]  # the default keys the web editor uses
    run("classes", "rename", proj, "up", "top")
    run("classes", "merge", proj, "left", "right", "--into", "side")
    stats = json.loads(run("stats", proj, "--json").stdout)
    assert stats["classes"] == {"top": 4, "side": 8}


def test_user_errors_are_one_line_without_traceback(tmp_path):
    result = run("stats", str(tmp_path / "missing"), ok=False)
    assert result.exit_code == 1
    assert "not found" in result.output and "Traceback" not in result.output
    proj = str(tmp_path / "p")
    run("init", proj, "--task", "detection")
    result = run("init", proj, "--task", "detection", ok=False)
    assert result.exit_code == 1 and "already" in result.output
    result = run("import", proj, str(tmp_path / "nothing-here"), ok=False)
    assert result.exit_code == 1 and "no such file" in result.output
