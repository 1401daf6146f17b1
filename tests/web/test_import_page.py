"""The import page as a person uses it: choose a folder of BCCD images (Pascal VOC) with one broken image, watch the
upload and the import job, read the report (images added, the broken file in the problem table); then export the
project as COCO and download the zip."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

from tests.web.conftest import BCCD_IMAGES

NEW_IMAGES = 3


def _xmls(bccd_dir: Path, start: int, n: int) -> list[Path]:
    return sorted((bccd_dir / "BCCD" / "Annotations").glob("*.xml"))[start:start + n]


def _voc_folder(bccd_dir: Path, out: Path) -> Path:
    """``out/new-cells/BCCD``: BCCD images the project does not hold yet, their XML files, and one broken JPEG."""
    voc = out / "new-cells" / "BCCD"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    xmls = _xmls(bccd_dir, BCCD_IMAGES, NEW_IMAGES + 1)
    for xml in xmls:
        shutil.copy(xml, voc / "Annotations" / xml.name)
        shutil.copy(bccd_dir / "BCCD" / "JPEGImages" / f"{xml.stem}.jpg", voc / "JPEGImages" / f"{xml.stem}.jpg")
    broken = voc / "JPEGImages" / f"{xmls[-1].stem}.jpg"
    broken.write_bytes(broken.read_bytes()[:300])  # a truncated download: the importer reports it, the rest goes on
    return out / "new-cells"


def test_import_a_folder_shows_the_report_then_export_downloads(page, served, bccd_dir, tmp_path, shot) -> None:
    folder = _voc_folder(bccd_dir, tmp_path)
    page.goto(f"{served.url}/#/p/{served.name}/import")
    page.wait_for_selector("#import-drop")
    page.set_input_files("#import-folder", str(folder))
    report = page.wait_for_selector("#import-report h3", timeout=120_000)
    assert "voc" in report.inner_text()
    cards = dict(zip(page.locator("#import-report .stat-label").all_inner_texts(),
                     page.locator("#import-report .stat-value").all_inner_texts(), strict=True))
    assert cards["images added"] == str(NEW_IMAGES)
    problems = page.locator("#import-problems tbody tr")
    assert problems.count() >= 1
    assert ".jpg" in problems.first.inner_text()
    shot(page, "import-report")

    page.select_option("#export-format", "coco")
    page.click("#export-start")
    link = page.wait_for_selector("#export-download", timeout=120_000)
    with page.expect_download() as download:
        link.click()
    path = tmp_path / "export.zip"
    download.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        coco = json.loads(z.read(next(n for n in names if n.endswith(".json"))))
    assert len(coco["images"]) == BCCD_IMAGES + NEW_IMAGES
    assert {c["name"] for c in coco["categories"]} >= {"RBC", "WBC", "Platelets"}
    shot(page, "import-export")


def test_drop_a_zip(page, served, bccd_dir, shot) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for xml in _xmls(bccd_dir, BCCD_IMAGES + NEW_IMAGES + 1, 2):
            z.write(xml, f"BCCD/Annotations/{xml.name}")
            z.write(bccd_dir / "BCCD" / "JPEGImages" / f"{xml.stem}.jpg", f"BCCD/JPEGImages/{xml.stem}.jpg")
    page.goto(f"{served.url}/#/p/{served.name}/import")
    page.wait_for_selector("#import-drop")
    page.evaluate("""([b64, name]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, {type: 'application/zip'}));
        document.querySelector('#import-drop').dispatchEvent(
            new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", [base64.b64encode(buffer.getvalue()).decode(), "more-cells.zip"])
    page.wait_for_selector("#import-report h3", timeout=120_000)
    cards = dict(zip(page.locator("#import-report .stat-label").all_inner_texts(),
                     page.locator("#import-report .stat-value").all_inner_texts(), strict=True))
    assert cards["images added"] == "2" and cards["problems"] == "0"
    assert "without a problem" in page.inner_text("#import-report")
    shot(page, "import-zip")
