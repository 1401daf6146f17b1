"""Bad input gets a per-file report and the rest of the import goes on."""

import io
import tarfile
import zipfile

import numpy as np
from PIL import Image

from tests.conftest import make_image_bytes
from visionloop.ingest import import_source


def reasons(report):
    return {p.path.split("!")[-1]: p.reason for p in report.problems}


def test_bad_files_are_reported_and_good_ones_imported(project_factory, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "good1.jpg").write_bytes(make_image_bytes(seed=1))
    (src / "good2.png").write_bytes(make_image_bytes(seed=2, fmt="PNG"))
    full = make_image_bytes(256, 256, seed=3)
    (src / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (src / "notes.jpg").write_bytes(b"this is not an image")
    (src / "zeros.png").write_bytes(b"\x00" * 100)
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")  # 400 Mpx header, tiny file
    (src / "bomb.png").write_bytes(buf.getvalue())
    p = project_factory("classification")
    report = import_source(p, src, format="images")
    assert report.images_added == 2
    r = reasons(report)
    assert "truncated" in r["truncated.jpg"]
    assert "not an image" in r["notes.jpg"]
    assert "not an image" in r["zeros.png"]
    assert "decompression-bomb" in r["bomb.png"]
    assert p.count_images() == 2


def test_all_pixel_modes_and_exif_are_handled(project_factory, tmp_path):
    src = tmp_path / "modes"
    src.mkdir()
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8))
    rgb.convert("CMYK").save(src / "cmyk.jpg")
    rgb.convert("L").save(src / "gray.png")
    rgb.convert("P").save(src / "palette.png")
    rgb.convert("RGBA").save(src / "rgba.png")
    Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)).save(src / "deep16.png")
    exif = Image.Exif()
    exif[0x0112] = 8
    rgb.save(src / "rotated.jpg", exif=exif)
    p = project_factory("classification")
    report = import_source(p, src, format="images")
    assert report.images_added == 6, report.problems
    sizes = {im.name: (im.width, im.height) for im in p.images()}
    assert sizes["rotated.jpg"] == (30, 40)  # EXIF orientation 8 swaps the axes
    assert sizes["cmyk.jpg"] == (40, 30)
    from visionloop.core.imageio import decode

    for im in p.images():
        out = decode(p.blobs.path(im.sha256))
        assert out.mode == "RGB" and out.size == (im.width, im.height)


def test_zip_slip_and_links_are_not_extracted(project_factory, tmp_path):
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("images/ok.jpg", make_image_bytes(seed=4))
        zf.writestr("../../evil.jpg", make_image_bytes(seed=5))
        zf.writestr("/abs/evil2.jpg", make_image_bytes(seed=6))
    p = project_factory("classification")
    report = import_source(p, archive, format="images")
    assert report.images_added == 1
    assert sum("slip" in pr.reason for pr in report.problems) == 2
    assert not (tmp_path.parent / "evil.jpg").exists() and not list(tmp_path.rglob("evil*.jpg"))

    tar_path = tmp_path / "upload.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        data = make_image_bytes(seed=7)
        info = tarfile.TarInfo("a/ok2.jpg")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        evil = tarfile.TarInfo("../evil3.jpg")
        evil.size = len(data)
        tf.addfile(evil, io.BytesIO(data))
        link = tarfile.TarInfo("a/link.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    report = import_source(p, tar_path, format="images")
    assert report.images_added == 1
    assert any("slip" in pr.reason and "evil3" in pr.path for pr in report.problems)
    assert any("link" in pr.reason for pr in report.problems)


def test_zip_bomb_member_is_refused(project_factory, tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.jpg", b"\x00" * (50 << 20))
        zf.writestr("ok.jpg", make_image_bytes(seed=8))
    p = project_factory("classification")
    report = import_source(p, archive, format="images")
    assert report.images_added == 1
    assert any("zip bomb" in pr.reason for pr in report.problems)


def test_reimport_adds_nothing(project_factory, tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.jpg").write_bytes(make_image_bytes(seed=i))
    p = project_factory("classification")
    first = import_source(p, src, format="images")
    again = import_source(p, src, format="images")
    assert (first.images_added, again.images_added, again.images_existing) == (5, 0, 5)
    assert p.count_images() == 5


def test_annotations_naming_missing_images_or_unknown_classes_are_reported(project_factory, tmp_path):
    import json

    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    for i in range(3):
        (root / "images" / f"{i}.jpg").write_bytes(make_image_bytes(64, 48, seed=i))
    images = [{"id": i + 1, "file_name": f"{i}.jpg", "width": 64, "height": 48} for i in range(4)]  # 3.jpg missing
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 9, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},  # unknown
        {"id": 3, "image_id": 3, "category_id": 1, "bbox": [50, 40, 80, 60], "area": 100, "iscrowd": 0},  # sticks out
        {"id": 4, "image_id": 4, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
    ]
    (root / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cell"}]}))
    p = project_factory("detection")
    report = import_source(p, root / "annotations.json")
    assert report.format == "coco" and report.images_added == 3
    text = " | ".join(f"{pr.path}: {pr.action}: {pr.reason}" for pr in report.problems)
    assert "3.jpg" in text  # the missing image is named
    assert "9" in text  # the unknown category is named
    clipped = [pr for pr in report.problems if pr.action == "clipped"]
    assert len(clipped) == 1 and "2.jpg" in clipped[0].path
    heads = {p.image(i).name: a for i, (_, a) in p.heads().items()}
    assert heads["2.jpg"].xyxy.tolist() == [[50, 40, 64, 48]]
    assert p.stats()["classes"] == {"cell": 2}
