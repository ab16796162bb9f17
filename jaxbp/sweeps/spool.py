"""The spool: finished configs kept on local disk until their child run is logged completely.

What it is for: a trained config is written to ``.jaxbp/spool/<spec hash>/<index>/`` (record, checkpoint,
figures) before it is logged, and removed once logged, so that neither a ``kill -9`` nor a tracking server
that goes away loses it; ``--resume`` logs what the spool holds without retraining.
What it is not: no tracking (see ``recorder``), no training.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

ARTIFACT_SUFFIXES = (".msgpack", ".png", ".json")  # logged with the child run (record.json is not)


def artifacts(folder: Path) -> list[Path]:
    """The files of a finished config that its child run keeps: checkpoint, figures, JSON such as a lineage."""
    return sorted(p for p in folder.iterdir() if p.suffix in ARTIFACT_SUFFIXES and p.name != "record.json")


class Spool:
    """Finished configs not yet logged, one folder each under ``root/<spec hash>/<index>/``."""

    def __init__(self, digest: str):
        self.root = Path(os.environ.get("JAXBP_SPOOL", ".jaxbp/spool")) / digest

    def folder(self, index: int) -> Path:
        return self.root / str(index)

    def put(self, record: dict) -> None:
        """Write the record last and atomically: a folder without ``record.json`` is incomplete."""
        tmp = self.folder(record["index"]) / "record.json.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, tmp.with_suffix(""))

    @property
    def search(self) -> Path:
        """The folder where an adaptive search keeps what ``--resume`` needs (survivors' states)."""
        return self.root / "search"

    def has(self, index: int) -> bool:
        return (self.folder(index) / "record.json").exists()

    def pending(self) -> list[dict]:
        files = sorted(self.root.glob("*/record.json"), key=lambda p: int(p.parent.name))
        return [json.loads(p.read_text()) for p in files]

    def artifacts(self, index: int) -> list[Path]:
        return artifacts(self.folder(index))

    def remove(self, index: int) -> None:
        shutil.rmtree(self.folder(index), ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
