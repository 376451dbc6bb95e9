"""The projects a server answers for: `--project` specs parsed, each project built by a factory so that a
reload can build a fresh one from the same source and swap it in while requests in flight finish on the old."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InputError
from ..model import Model
from ..project import Project
from ..store import MANIFEST
from .batching import Batcher
from .problems import Problem
from .process import freeze_heap

PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
LABELS_PREFIX = "labels:"


@dataclass(frozen=True)
class ProjectSpec:
    """`ID=MODEL_DIR` (a saved model) or `ID=labels:LABELS_FILE` (zero-shot on a label file)."""

    project_id: str
    model_dir: Path | None = None
    labels_file: Path | None = None

    @classmethod
    def parse(cls, text: str) -> "ProjectSpec":
        project_id, sep, source = text.partition("=")
        if not sep or not source:
            raise InputError(f"--project {text!r} is not ID=MODEL_DIR or ID=labels:LABELS_FILE",
                             fix="e.g. --project tickets=models/tickets or --project yso=labels:yso.ttl")
        if not PROJECT_ID.fullmatch(project_id):
            raise InputError(f"project id {project_id!r} is not usable in a URL path",
                             fix="use letters, digits, '.', '_' and '-', starting with a letter or digit")
        if source.startswith(LABELS_PREFIX):
            path = Path(source[len(LABELS_PREFIX):])
            if not path.is_file():
                raise InputError(f"labels file {str(path)!r} of project {project_id!r} does not exist",
                                 fix="give the path of a labels file")
            return cls(project_id, labels_file=path)
        path = Path(source)
        if not (path / MANIFEST).is_file():
            raise InputError(f"{str(path)!r} of project {project_id!r} is not a model folder (no {MANIFEST})",
                             fix="give a folder written by `taxonomist train`, or labels:FILE for zero-shot")
        return cls(project_id, model_dir=path)


class ServedProject:
    """One project as served: the current Project (replaced whole on reload), its label language (Annif's
    vocabulary language), whether clients may change its model, and the batcher its documents are ranked by."""

    def __init__(self, build: Callable[[], Project], *, language: str = "en") -> None:
        self._build = build
        self.project = build()
        self.project_id = self.project.project_id
        self.language = language
        self._reload_lock = threading.Lock()
        self._checksum: tuple[Model, str | None] | None = None
        self.batcher = Batcher(name=f"rank-{self.project_id}")

    @property
    def model(self) -> Model:
        """The current model; a caller keeps this reference for the whole request."""
        return self.project.model

    @property
    def allow_learning(self) -> bool:
        return self.project.allow_learning

    @property
    def loaded(self) -> bool:
        return self.project.is_loaded

    def checksum(self) -> str | None:
        """The current model's checksum (Project.checksum), read from its folder once per model, not per request."""
        model, cached = self.model, self._checksum
        if cached is None or cached[0] is not model:
            cached = self._checksum = (model, self.project.checksum())
        return cached[1]

    def reload(self) -> Project:
        """A fresh Project from the same source, its model loaded before it replaces the current one."""
        with self._reload_lock:
            fresh = self._build()
            fresh.model  # noqa: B018 - loads it, off the request path of everyone else
            self.project = fresh
            freeze_heap()
            return fresh

    def modification_time(self) -> str | None:
        """When the model folder was last written (Annif's modification_time), ISO 8601 in UTC."""
        folder = self.project.model_dir
        if folder is None or not (folder / MANIFEST).is_file():
            return None
        stamp = datetime.fromtimestamp((folder / MANIFEST).stat().st_mtime, tz=timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


class Projects(Mapping[str, ServedProject]):
    """The served projects by id; an unknown id is Annif's 404."""

    def __init__(self, projects: list[ServedProject]) -> None:
        self._by_id: dict[str, ServedProject] = {}
        for served in projects:
            if served.project_id in self._by_id:
                raise InputError(f"project id {served.project_id!r} is given twice", fix="give each project its own id")
            self._by_id[served.project_id] = served
        if not self._by_id:
            raise InputError("no project to serve", fix="pass --project ID=MODEL_DIR (or ID=labels:FILE)")

    def __getitem__(self, project_id: str) -> ServedProject:
        return self._by_id[project_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def find(self, project_id: str) -> ServedProject:
        served = self._by_id.get(project_id)
        if served is None:
            raise Problem(404, "Project not found", f"Project '{project_id}' not found")
        return served


def builder(spec: ProjectSpec, *, encoder: str | None = None, language: str = "en",
            allow_learning: bool = False) -> Callable[[], Project]:
    """What builds the spec's Project, now and on each reload (a labels file is read again then)."""

    def build() -> Project:
        if spec.labels_file is not None:
            from ..readers import read_labels

            return Project(spec.project_id, labels=read_labels(str(spec.labels_file), language=language),
                           encoder=encoder, allow_learning=allow_learning)
        return Project(spec.project_id, model_dir=spec.model_dir, encoder=encoder, allow_learning=allow_learning)

    return build
