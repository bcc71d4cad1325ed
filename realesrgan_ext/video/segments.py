"""The work folder of a video run: encoded segments of N frames and a manifest of the finished ones.

Each segment is its own file (``00000.nut``, ...), written under a temporary name and renamed
when whole; the manifest (``manifest.json``, replaced atomically) lists the finished segments and
what the run was (input file, model and encoding settings). ``--resume`` keeps the listed
segments of a run with the same description and starts at the first frame after them; anything
else in the folder is from an unfinished segment and is deleted.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
SEGMENT_SUFFIX = ".nut"  # FFmpeg's own container: any codec
STAMPS_SUFFIX = ".json"  # beside each segment: its packets' (pts, dts), which NUT does not all keep


@dataclass(frozen=True)
class Segment:
    """One finished segment: its file (in the work folder), first frame index and frame count."""

    file: str
    first: int
    frames: int


@dataclass
class WorkFolder:
    """The segments of one run, as recorded in the manifest; ``run`` describes the run (JSON-able)."""

    path: Path
    run: dict[str, Any]
    segments: list[Segment] = field(default_factory=list)

    @property
    def next_frame(self) -> int:
        """The first frame no finished segment holds."""
        return self.segments[-1].first + self.segments[-1].frames if self.segments else 0

    def segment_path(self, index: int) -> Path:
        return self.path / f"{index:05d}{SEGMENT_SUFFIX}"

    def partial_path(self, index: int) -> Path:
        """Where segment ``index`` is written until it is whole."""
        return self.path / f"{index:05d}.partial"

    def add(self, index: int, first: int, frames: int, stamps: list[tuple[int, int]]) -> None:
        """Record segment ``index`` (already at ``partial_path``) as finished: its packets' ``(pts, dts)``
        beside it, then the rename, then the manifest."""
        stamps_path = self.segment_path(index).with_suffix(STAMPS_SUFFIX)
        stamps_path.write_text(json.dumps(stamps))
        os.replace(self.partial_path(index), self.segment_path(index))
        self.segments.append(Segment(self.segment_path(index).name, first, frames))
        self._save()

    def stamps(self, segment: Segment) -> list[tuple[int, int]]:
        """The ``(pts, dts)`` of each packet of ``segment``, in the input video's time base."""
        return [tuple(pair) for pair in json.loads((self.path / segment.file).with_suffix(STAMPS_SUFFIX).read_text())]

    def files(self) -> list[Path]:
        return [self.path / s.file for s in self.segments]

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _save(self) -> None:
        record = {"version": MANIFEST_VERSION, "run": self.run, "segments": [asdict(s) for s in self.segments]}
        tmp = self.path / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.path / MANIFEST)


def work_folder_for(output: Path) -> Path:
    """The work folder of ``output``: hidden, beside it (``.clip_x4.mp4.work``)."""
    return output.with_name(f".{output.name}.work")


def open_work_folder(path: Path, run: dict[str, Any], resume: bool) -> tuple[WorkFolder, str | None]:
    """The work folder at ``path`` for ``run``, and a note on what happened to an earlier one.

    ``resume``: keep the finished segments of an earlier run with the same ``run`` description.
    Otherwise (or when the description differs, or the manifest is unreadable) start empty.
    """
    note = None
    if path.exists():
        kept = _read(path, run) if resume else None
        if kept is not None:
            _delete_unlisted(path, kept)
            frames = kept.next_frame
            return kept, f"resuming after {len(kept.segments)} finished segment(s) ({frames} frames) in {path}"
        note = (f"{path} is from a different run (input, model or settings changed); starting over" if resume
                else f"starting over: removed the unfinished run in {path} (pass --resume to continue one)")
        shutil.rmtree(path)
    elif resume:
        note = f"nothing to resume ({path} does not exist); starting from the first frame"
    path.mkdir(parents=True)
    folder = WorkFolder(path, run)
    folder._save()
    return folder, note


def _read(path: Path, run: dict[str, Any]) -> WorkFolder | None:
    try:
        record = json.loads((path / MANIFEST).read_text())
        if record.get("version") != MANIFEST_VERSION or record.get("run") != json.loads(json.dumps(run)):
            return None
        segments = [Segment(**s) for s in record["segments"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not all((path / s.file).is_file() and (path / s.file).with_suffix(STAMPS_SUFFIX).is_file() for s in segments):
        return None
    return WorkFolder(path, run, segments)


def _delete_unlisted(path: Path, folder: WorkFolder) -> None:
    keep = {name for s in folder.segments for name in (s.file, Path(s.file).with_suffix(STAMPS_SUFFIX).name)}
    keep.add(MANIFEST)
    for item in path.iterdir():
        if item.name not in keep:
            item.unlink()
