from __future__ import annotations

import base64
import re

from visionloop.evaluation import html as h
from visionloop.evaluation.api import error_table, evaluate_run
from visionloop.training import train


def test_html_helpers_are_self_contained_and_escaped(tmp_path):
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure()
    fig.add_subplot(111).plot([0, 1], [1, 0])
    uri = h.png_uri(fig)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    body = h.section("<x>", h.table(["a", "b"], [["<script>", 0.5], [1, None]]))
    body += h.gallery([(h.image_uri(Image.new("RGB", (500, 300))), "cap")])
    path = h.write_page(tmp_path / "r.html", "T & t", body)
    text = path.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text and "0.5000" in text
    assert not re.search(r'src="(?!data:)', text)  # no external resources


def test_error_table_worst_first():
    import numpy as np

    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    rows = error_table(task="classification", y=np.array([0, 0, 0]), probs=probs, names=["a", "b"],
                       image_ids=[1, 2, 3], image_names=["1", "2", "3"], shas=["s1", "s2", "s3"])
    assert [r["image_id"] for r in rows] == [3, 2]
    assert rows[0]["predicted"] == "b" and rows[0]["p_predicted"] == 0.8


def test_classification_report_has_plots_and_gallery(synthetic_project):
    p = synthetic_project("classification", n_per_class=10)
    res = train(p, version="v1", strategy="frozen", epochs=1, progress=False, model="test_resnet", pretrained=False,
                image_size=32, batch_size=8)
    out = evaluate_run(p, res.run_id, split="val")
    html = (res.run_dir / "report.html").read_text()
    for needle in ("confusion matrix", "precision-recall", "reliability", "training curves", "Worst errors",
                   "Augmentation policy", "rotation within ±10°"):
        assert needle in html, needle
    assert html.count("data:image/png;base64,") >= 4
    assert out["split"] == "val" and "confusion_matrix" in out
