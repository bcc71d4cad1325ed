"""Packing an image folder into an LMDB that BasicSR's ``FileClient('lmdb')`` reads.

Layout (the one ``basicsr.utils.lmdb_util.make_lmdb_from_imgs`` writes)::

    OUT.lmdb/
      data.mdb, lock.mdb   key (ASCII) -> PNG bytes
      meta_info.txt        one line per image: "<key>.png (h,w,c) <compress_level>"

Keys are the image's path relative to the input folder, without extension, with '/'
separators (``sub/0001.jpg`` -> ``sub/0001``), so equal names in different subfolders never
collide. BasicSR reads keys back from ``meta_info.txt`` with ``line.split('.')[0]``, so a key
may not contain '.', whitespace or non-ASCII characters: such paths are refused up front.

Values are PNG re-encodings of the decoded pixels (8/16-bit, 1/3/4 channels kept), so
``cv2.imdecode(value, cv2.IMREAD_UNCHANGED)`` gives back exactly what ``cv2.imread`` gives for
the source file (for a JPEG: its decoded pixels).

The database is built in ``OUT.lmdb.partial`` and renamed to ``OUT.lmdb`` only once it is
complete, ``meta_info.txt`` written last: an interrupted run never leaves an LMDB that looks
finished, and the next run removes the stale partial and starts again. The map grows when
it fills (``MapFullError``), starting from an estimate based on the sources' sizes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import lmdb
from tqdm import tqdm

from realesrgan_ext.data.image_io import ImageReadError, read_image
from realesrgan_ext.tools.image_files import DataToolError, channels, encode_png, list_images, strip_extension

META_INFO_NAME = "meta_info.txt"
PARTIAL_SUFFIX = ".partial"
MIN_MAP_SIZE = 64 * 1024**2
BATCH_IMAGES = 500
BATCH_BYTES = 256 * 1024**2


@dataclass
class LmdbResult:
    """What a build wrote: the finished path, its keys (meta-info order) and the skipped files."""

    path: Path
    keys: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file path, reason)
    data_bytes: int = 0


def lmdb_key(rel_path: str) -> str:
    """The LMDB key of an image: its relative path without extension, '/' separators."""
    return strip_extension(rel_path)


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a BasicSR LMDB key, or None when it can."""
    if not key.isascii():
        return "non-ASCII characters (basicsr encodes keys as ASCII)"
    if any(ch.isspace() for ch in key):
        return "whitespace (meta_info.txt is space-separated)"
    if "." in key:
        return "a '.' in the path (basicsr reads keys back with line.split('.')[0])"
    return None


def keys_for(rel_paths: Iterable[str], source: str | Path) -> dict[str, str]:
    """Map key -> relative path; refuses unusable or colliding keys, naming every offender."""
    keys: dict[str, str] = {}
    problems = []
    for rel in rel_paths:
        key = lmdb_key(rel)
        reason = key_problem(key)
        if reason:
            problems.append(f"  {Path(source, rel)}: {reason}")
        elif key in keys:
            problems.append(f"  {Path(source, rel)} and {keys[key]}: same key '{key}'")
        else:
            keys[key] = rel
    if problems:
        raise DataToolError(f"{len(problems)} file(s) under {source} cannot get an LMDB key; rename them:\n"
                            + "\n".join(problems))
    return keys


def meta_line(key: str, shape: tuple[int, int, int], compress_level: int) -> str:
    h, w, c = shape
    return f"{key}.png ({h},{w},{c}) {compress_level}\n"


def encode_file(task: tuple[str, str, int]) -> tuple[str, bytes | None, tuple[int, int, int] | None, str | None]:
    """(path, key, level) -> (key, PNG bytes, (h, w, c), error). Runs in worker processes."""
    path, key, compress_level = task
    try:
        img = read_image(path)
        data = encode_png(img, compress_level, path)
    except (ImageReadError, DataToolError) as err:
        return key, None, None, str(err)
    return key, data, (img.shape[0], img.shape[1], channels(img)), None


class PartialLmdb:
    """An LMDB being built under ``<final>.partial``; ``finish`` renames it, ``abort`` deletes it."""

    def __init__(self, final: Path, map_size: int):
        self.final = final
        self.path = Path(str(final) + PARTIAL_SUFFIX)
        if self.path.exists():  # left by an interrupted run: never resumed, rebuilt
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        # mode 0o666 & ~umask, as any file (lmdb's default 0o755 would make the data executable)
        self.env = lmdb.open(str(self.path), map_size=max(map_size, MIN_MAP_SIZE), mode=0o666)
        self.meta: dict[str, str] = {}
        self.data_bytes = 0

    def put_batch(self, items: list[tuple[str, bytes, str]]) -> None:
        """Write (key, value, meta line) items in one transaction, doubling the map while it is full."""
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value, _ in items:
                        txn.put(key.encode("ascii"), value)
                break
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
        for key, value, line in items:
            self.meta[key] = line
            self.data_bytes += len(value)

    def delete(self, keys: Iterable[str]) -> None:
        with self.env.begin(write=True) as txn:
            for key in keys:
                if self.meta.pop(key, None) is not None:
                    self.data_bytes -= len(txn.pop(key.encode("ascii")) or b"")

    def finish(self, order: list[str], overwrite: bool) -> None:
        """Write meta_info.txt (last), close, and move into place."""
        self.env.sync()
        self.env.close()
        with open(self.path / META_INFO_NAME, "w", encoding="ascii") as fh:
            fh.writelines(self.meta[key] for key in order if key in self.meta)
        if self.final.exists():
            if not overwrite:
                raise DataToolError(f"{self.final} appeared while building; the new one is left at {self.path}")
            shutil.rmtree(self.final)
        os.replace(self.path, self.final)

    def abort(self) -> None:
        self.env.close()
        shutil.rmtree(self.path, ignore_errors=True)


def _check_output(output: str | Path, overwrite: bool) -> Path:
    output = Path(output)
    if output.suffix != ".lmdb":
        raise DataToolError(f"{output}: the output must end with '.lmdb' (basicsr's LMDB datasets require it)")
    if output.exists() and not overwrite:
        raise DataToolError(f"{output} already exists; pass --overwrite (overwrite=True) to replace it")
    return output


def _encoded(tasks: list[tuple[str, str, int]], workers: int) -> Iterator[tuple]:
    if workers <= 1 or len(tasks) < 2:
        yield from map(encode_file, tasks)
        return
    with Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(encode_file, tasks, chunksize=4)


def _fill(partial: PartialLmdb, input_dir: Path, keys: dict[str, str], compress_level: int, skip_bad: bool,
          workers: int, progress: bool, on_image: Callable[[str], None] | None) -> list[tuple[str, str, str]]:
    """Encode and store every image; returns (key, path, reason) for each skipped one."""
    tasks = [(str(input_dir / rel), key, compress_level) for key, rel in keys.items()]
    skipped = []
    batch: list[tuple[str, bytes, str]] = []
    batch_bytes = 0
    with tqdm(total=len(tasks), unit="img", desc=f"LMDB {partial.final.name}", disable=not progress) as bar:
        for key, data, shape, error in _encoded(tasks, workers):
            bar.update(1)
            if error is not None:
                if not skip_bad:
                    raise DataToolError(f"{error} (pass --skip-bad to skip unreadable images)")
                skipped.append((key, str(input_dir / keys[key]), error))
                continue
            if on_image is not None:
                on_image(key)
            batch.append((key, data, meta_line(key, shape, compress_level)))
            batch_bytes += len(data)
            if len(batch) >= BATCH_IMAGES or batch_bytes >= BATCH_BYTES:
                partial.put_batch(batch)
                batch, batch_bytes = [], 0
        partial.put_batch(batch)
    return skipped


def _estimate_map_size(input_dir: Path, rels: Iterable[str]) -> int:
    """Sources' total size x4 (a JPEG re-encoded as fast PNG grows ~2-4x); the map grows if short."""
    return 4 * sum((input_dir / rel).stat().st_size for rel in rels) + MIN_MAP_SIZE


def make_lmdb(input_dir: str | Path, output: str | Path, *, compress_level: int = 1, skip_bad: bool = False,
              overwrite: bool = False, workers: int = 1, progress: bool = True,
              on_image: Callable[[str], None] | None = None) -> LmdbResult:
    """Pack every image under ``input_dir`` (recursively) into the LMDB ``output`` (``*.lmdb``).

    Raises ``DataToolError`` naming the file for an unreadable image (unless ``skip_bad``), for
    paths that cannot be keys, and for an existing ``output`` (unless ``overwrite``). On any
    error or interrupt the partial database is removed. ``on_image(key)`` is called before each
    image is stored (progress hooks, tests).
    """
    return make_lmdb_pair([input_dir], [output], compress_level=compress_level, skip_bad=skip_bad,
                          overwrite=overwrite, workers=workers, progress=progress, on_image=on_image)[0]


def make_lmdb_pair(input_dirs: list[str | Path], outputs: list[str | Path], *, compress_level: int = 1,
                   skip_bad: bool = False, overwrite: bool = False, workers: int = 1, progress: bool = True,
                   on_image: Callable[[str], None] | None = None) -> list[LmdbResult]:
    """Pack several folders with the same keys (e.g. LR and HR) into one LMDB each.

    With more than one folder the key sets must be equal (BasicSR's paired LMDB mode checks
    it); an image skipped in one folder (``skip_bad``) is dropped from all of them. All outputs
    are built as partials first and renamed into place together at the end.
    """
    if len(input_dirs) != len(outputs) or not input_dirs:
        raise DataToolError(f"give one output per input: {len(input_dirs)} input(s), {len(outputs)} output(s)")
    input_dirs = [Path(d) for d in input_dirs]
    outputs = [_check_output(o, overwrite) for o in outputs]
    if len(set(outputs)) != len(outputs):
        raise DataToolError("the outputs must be different paths")
    key_maps = []
    for folder in input_dirs:
        rels = list_images(folder)
        if not rels:
            raise DataToolError(f"{folder}: no image files found")
        key_maps.append(keys_for(rels, folder))
    for folder, keys in zip(input_dirs[1:], key_maps[1:], strict=True):
        if set(keys) != set(key_maps[0]):
            only_a = sorted(set(key_maps[0]) - set(keys))[:5]
            only_b = sorted(set(keys) - set(key_maps[0]))[:5]
            raise DataToolError(f"{input_dirs[0]} and {folder} hold different images (the keys must match): "
                                f"only in the first {only_a}, only in the second {only_b}")

    partials: list[PartialLmdb] = []
    skipped: list[tuple[str, str, str]] = []
    try:
        for folder, keys, output in zip(input_dirs, key_maps, outputs, strict=True):
            partials.append(PartialLmdb(output, _estimate_map_size(folder, keys.values())))
            skipped += _fill(partials[-1], folder, keys, compress_level, skip_bad, workers, progress, on_image)
        dropped = {key for key, _, _ in skipped}
        order = [key for key in key_maps[0] if key not in dropped]
        if not order:
            raise DataToolError(f"no image under {', '.join(map(str, input_dirs))} could be read")
        if dropped:
            for partial in partials:
                partial.delete(dropped)
        finished = []
        for partial in partials:
            partial.finish(order, overwrite)
            finished.append(partial)
    except BaseException:
        for partial in partials:
            if partial.path.exists():
                partial.abort()
        raise
    reasons = [(path, reason) for _, path, reason in skipped]
    return [LmdbResult(p.final, list(order), reasons, p.data_bytes) for p in finished]
