"""Detection (or instance segmentation) from a COCO, VOC or YOLO dataset to predictions from an exported package.

Run it as ``python detection.py DATASET WORKDIR``. When the dataset comes with its own train/val/test (COCO
``instances_train.json`` and ``instances_val.json``, VOC ``ImageSets/Main``, YOLO ``images/train``), the version
keeps them, so results compare with published ones; otherwise pass ``splits="random"``. For instance segmentation
use ``task="segmentation"`` with a source that has masks or polygons (COCO segmentation, Kaggle mask folders).
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


def main(dataset: Path, workdir: Path, *, task: str = "detection", splits: str = "source", epochs: int | None = None,
         image_size: int | None = None, pretrained: bool = True) -> dict:
    with Project.create(workdir / "project", task=task) as project:
        report = import_source(project, dataset)
        for problem in report.problems[:10]:
            print(f"  {problem.path}: {problem.reason} ({problem.action})")

        # The source's own split; near-duplicates that straddle its splits are reported in summary["leaks"].
        version = create_version(project, splits=splits)
        print(f"version {version.name}: {version.splits}, leaks {version.summary['leaks']['groups']}")

        # A torchvision detector (Faster R-CNN with a MobileNet v3 backbone by default), fine-tuned end to end.
        options = {"image_size": image_size} if image_size else {}
        run = train(project, version=version.name, epochs=epochs, pretrained=pretrained, progress=False, **options)

        # COCO mAP (pycocotools), per-class AP, confusion and score thresholds chosen on the validation split.
        split = "test" if version.splits["test"] else "val"
        metrics = evaluate_run(project, run.run_id, split=split)
        print(f"{split} mAP50 {metrics['map50']:.3f}")
        package = export_run(project, run.run_id, workdir / "detector.vlpkg")

    predictor = Predictor(package)
    first = next(p for p in sorted(dataset.rglob("*")) if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    prediction = predictor.predict(first)
    print(f"{first.name}: {len(prediction.detections)} objects, {prediction.summary()}")
    return {"version": version, "metrics": metrics, "package": package, "prediction": prediction}


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
