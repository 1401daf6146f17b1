"""Archive limits that hold however the archive is built: zip and tar alike, bytes counted as written."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import make_image_bytes
from visionloop.core.errors import FormatError
from visionloop.core.settings import Settings
from visionloop.ingest import import_source
from visionloop.ingest.archives import MAX_TOTAL_RATIO, RATIO_FLOOR, extract

JUST_UNDER_MIB = (1 << 20) - 1


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _written(root: Path) -> int:
    return sum(p.stat().st_size for p in _files(root))


def _allowed(archive: Path) -> int:
    """The most a ratio-refused archive may have written: the ratio's bound plus the chunk being written."""
    return max(RATIO_FLOOR, MAX_TOTAL_RATIO * archive.stat().st_size) + (1 << 20)


def _tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_many_members_each_under_the_member_check_are_refused_as_a_whole(tmp_path: Path) -> None:
    """300 members just under 1 MiB each (300 MB) from a ~0.3 MB zip: the whole-archive ratio stops it."""
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.jpg", make_image_bytes(seed=1))
        for i in range(300):
            zf.writestr(f"junk/{i:03d}.bin", b"\0" * JUST_UNDER_MIB)
    assert archive.stat().st_size < 400_000
    root, problems = extract(archive, tmp_path / "cache", Settings())
    assert any("zip bomb" in p.reason and "100:1" in p.reason for p in problems)
    assert _written(root) <= _allowed(archive) < 40 << 20  # of 300 MB
    assert (root / "ok.jpg").is_file()


def test_tar_gz_has_the_same_limits(tmp_path: Path) -> None:
    """Any compressed tar: no per-member compressed size, so only the whole-archive check can see a bomb."""
    archive = _tar(tmp_path / "many.tar.gz", [("ok.jpg", make_image_bytes(seed=2))]
                   + [(f"junk/{i:03d}.bin", b"\0" * JUST_UNDER_MIB) for i in range(300)])
    assert archive.stat().st_size < 400_000
    root, problems = extract(archive, tmp_path / "cache", Settings())
    assert any("zip bomb" in p.reason for p in problems)
    assert _written(root) <= _allowed(archive) < 40 << 20 and (root / "ok.jpg").is_file()


def test_member_count_and_total_bytes_are_counted_while_extracting(tmp_path: Path) -> None:
    data = make_image_bytes(seed=3)
    archive = _tar(tmp_path / "five.tar", [(f"{i}.jpg", data) for i in range(5)], mode="w")
    root, problems = extract(archive, tmp_path / "c1", Settings(max_archive_members=3))
    assert len(_files(root)) == 3 and any("MAX_ARCHIVE_MEMBERS" in p.reason for p in problems)
    archive = tmp_path / "five.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(5):
            zf.writestr(f"{i}.bin", bytes(range(256)) * 400)  # 102,400 bytes each, stored
    root, problems = extract(archive, tmp_path / "c2", Settings(max_archive_bytes=250_000))
    assert _written(root) <= 250_000 and len(_files(root)) == 2
    assert any("MAX_ARCHIVE_BYTES" in p.reason for p in problems)


@pytest.mark.parametrize("compress", [True, False])
def test_tar_header_claiming_a_gigabyte_is_refused_before_reading(tmp_path: Path, compress: bool) -> None:
    info = tarfile.TarInfo("big.jpg")
    info.size = 10**9
    raw = info.tobuf() + b"\xff" * 4096  # the header claims 1 GB; the data stops after 4 KB
    path = tmp_path / ("claim.tar.gz" if compress else "claim.tar")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    root, problems = extract(path, tmp_path / "cache", Settings())
    assert len(problems) == 1 and "1,000,000,000 bytes" in problems[0].reason
    assert _files(root) == []


def test_truncated_and_mislabelled_archives_give_a_clear_problem(project_factory, tmp_path: Path) -> None:
    members = [(f"img/{i}.jpg", make_image_bytes(seed=i, width=256, height=256)) for i in range(6)]
    good_tgz = _tar(tmp_path / "good.tar.gz", members)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good_tgz.read_bytes()[: good_tgz.stat().st_size * 2 // 3])
    p = project_factory("classification")
    report = import_source(p, cut, format="images")
    assert 1 <= report.images_added < 6
    assert any("truncated or corrupt" in q.reason for q in report.problems)

    good_zip = tmp_path / "good.zip"
    with zipfile.ZipFile(good_zip, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    cut_zip = tmp_path / "cut.zip"
    cut_zip.write_bytes(good_zip.read_bytes()[: good_zip.stat().st_size // 2])
    with pytest.raises(FormatError, match="neither a zip nor a tar archive"):
        import_source(p, cut_zip, format="images")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is not an archive" * 50)
    with pytest.raises(FormatError, match="re-download"):
        import_source(p, garbage, format="images")
    # a tar.gz named .zip (and a zip named .tar.gz) are read by what they hold
    renamed = tmp_path / "really_tgz.zip"
    renamed.write_bytes(good_tgz.read_bytes())
    assert import_source(p, renamed, format="images").images_seen == 6
    renamed = tmp_path / "really_zip.tar.gz"
    renamed.write_bytes(good_zip.read_bytes())
    assert import_source(p, renamed, format="images").images_seen == 6


def test_corrupt_zip_member_is_a_problem_and_the_rest_is_extracted(tmp_path: Path) -> None:
    archive = tmp_path / "crc.zip"
    good = make_image_bytes(seed=9)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.jpg", b"A" * 5000)
        zf.writestr("b.jpg", good)
    data = bytearray(archive.read_bytes())
    data[40:44] = b"\0\0\0\0"  # damage a.jpg's compressed bytes
    archive.write_bytes(bytes(data))
    root, problems = extract(archive, tmp_path / "cache", Settings())
    assert (root / "b.jpg").read_bytes() == good
    assert not (root / "a.jpg").exists()
    assert any("a.jpg" in q.path and "truncated or corrupt" in q.reason for q in problems)
