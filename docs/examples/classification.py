"""Classification from a folder of class folders to predictions from an exported package.

Run it as ``python classification.py IMAGES WORKDIR`` where IMAGES holds ``<class>/<image>`` folders (or
``train/<class>/...`` and ``val/<class>/...``). Tagging is the same code with ``task="tagging"`` and a source whose
images carry several labels (a CSV with a ``tags`` column, COCO ``labels_*.json``, CVAT ``<tag>``s).
"""

from __future__ import annotations

import sys
from pathlib import Path

from visionloop.evaluation.api import evaluate_run
from visionloop.export.api import export_run
from visionloop.inference.predictor import Predictor
from visionloop.ingest.importer import import_source
from visionloop.storage import Project
from visionloop.storage.versions import create_version
from visionloop.training import train


def main(images: Path, workdir: Path, *, model: str = "resnet18", epochs: int = 10, image_size: int = 224,
         pretrained: bool = True) -> dict:
    # 1. A project is a folder: settings, a SQLite database and a content-addressed image store.
    with Project.create(workdir / "project", task="classification") as project:
        # 2. Import: the format is detected; per-file problems are reported, never fatal.
        report = import_source(project, images)
        print(f"imported {report.images_added} images as {report.format}, {len(report.problems)} problems")

        # 3. Freeze an immutable dataset version with a leak-free, stratified train/val/test split.
        version = create_version(project, fractions=(0.7, 0.15, 0.15), seed=0)
        print(f"version {version.name}: {version.splits}")

        # 4. Train (a timm backbone; `strategy` picks linear probe, frozen or fine-tuning).
        run = train(project, version=version.name, model=model, epochs=epochs, image_size=image_size,
                    pretrained=pretrained, progress=False)
        print(f"run {run.run_id}: validation {run.metrics['val']}")

        # 5. Evaluate on the test split: metrics, the worst errors and an HTML report in the run folder.
        metrics = evaluate_run(project, run.run_id, split="test")
        print(f"test accuracy {metrics['accuracy']:.3f}, report at {metrics['report']}")

        # 6. Export a model package: model.onnx + manifest (classes, preprocessing, metrics, dataset version).
        package = export_run(project, run.run_id, workdir / "classifier.vlpkg")

    # 7. Predict with the package alone (onnxruntime; no project or torch needed).
    predictor = Predictor(package)
    first = next(p for p in sorted(images.rglob("*")) if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    prediction = predictor.predict(first)
    print(f"{first.name}: {prediction.to_json()}")
    return {"metrics": metrics, "package": package, "prediction": prediction}


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
