"""Upscaling a folder tree on a Ray cluster, with the same jobs, engine and tiling as one machine.

``plan_jobs`` plans on the driver exactly as a plain run does; the jobs become a ``ray.data``
dataset that streams through ``map_batches`` into a pool of actors, each of which loads the model
once (``load_model`` + ``make_upscaler``, as ``scripts/inference.py``) and reads, upscales and
writes its images itself. Only paths and one-line results cross the network, so the input and
output folders (and the checkpoint) must be on storage every node sees (NFS, a shared volume).
A file that fails is reported by path and the rest go on, as in ``run_jobs``.

Ray is optional (``bash scripts/install.sh --ray``); importing this module does not import it.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from realesrgan_ext.inference.batch import BatchResult, Job, final_target, path_key


@dataclass(frozen=True)
class UpscaleSettings:
    """Everything an actor needs to build the same upscaler as the driver would: plain values only."""

    model: str
    backend: str = "auto"
    precision: str = "auto"
    device: str = "auto"
    tile: int = 0
    tile_pad: int = 10
    alpha: str = "model"
    outscale: float | None = None
    ext: str = "auto"
    blend: tuple[str, float] | None = None  # (other checkpoint, alpha): --blend, loaded by each actor
    limits: dict[str, float] | None = None  # ``Limits`` fields (the driver's --max-* flags); None: the defaults


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster could not be reached."""


class UpscaleActor:
    """One model per actor: ``__call__`` upscales a batch of ``source`` / ``target`` rows."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from realesrgan_ext.data.image_header import allow_in_pillow
        from realesrgan_ext.inference.engines import make_upscaler
        from realesrgan_ext.inference.model_blending import load_blended_model
        from realesrgan_ext.inference.model_loader import load_model
        from realesrgan_ext.limits import Limits

        self.settings = UpscaleSettings(**settings)
        s = self.settings
        limits = Limits(**s.limits) if s.limits else Limits.from_env()
        allow_in_pillow(limits)
        model = load_blended_model(s.model, *s.blend, limits) if s.blend else load_model(s.model, limits=limits)
        self.upscaler = make_upscaler(model, s.backend, s.precision, s.device, tile=s.tile, tile_pad=s.tile_pad,
                                      alpha=s.alpha, limits=limits)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        written, errors = [], []
        for source, target, taken in zip(batch["source"], batch["target"], batch["png_taken"], strict=True):
            path, error = self._one(Job(Path(source), Path(target)), bool(taken))
            written.append(path)
            errors.append(error)
        return {"source": batch["source"], "written": np.array(written, dtype=object),
                "error": np.array(errors, dtype=object)}

    def _one(self, job: Job, png_taken: bool) -> tuple[str, str]:
        """(written path, "") or ("", reason): every failure is a result, never a crashed task."""
        from realesrgan_ext.inference.image_io import load_image, save_image

        try:
            image = load_image(job.source, self.upscaler.limits)
            target = final_target(job, image, self.settings.ext, lambda _name: png_taken)
            pixels = self.upscaler.upscale(image.pixels, self.settings.outscale)
            return str(save_image(target, pixels)), ""
        except Exception as err:  # noqa: BLE001  (reported per file; the run goes on)
            reason = str(err) if str(err).startswith(str(job.source)) else f"{type(err).__name__}: {err}"
            return "", reason.removeprefix(f"{job.source}: ")


def png_alternative_taken(jobs: list[Job]) -> list[bool]:
    """Per job: would its ``.png`` alternative (for alpha / 16-bit pixels) hit an input or another output?

    Decided once on the driver, so that actors need no shared state; an alternative that two
    jobs could both switch to counts as taken for both (a plain run lets the first one win).
    """
    planned = {path_key(j.target) for j in jobs} | {path_key(j.source) for j in jobs}
    alternatives = [path_key(j.target.with_suffix(".png")) for j in jobs]
    shared = Counter(a for a, j in zip(alternatives, jobs, strict=True) if j.target.suffix.lower() != ".png")
    return [j.target.suffix.lower() != ".png" and (a in planned or shared[a] > 1)
            for a, j in zip(alternatives, jobs, strict=True)]


def run_jobs_ray(settings: UpscaleSettings, jobs: list[Job], address: str | None = None, actors: int = 0,
                 cpus_per_actor: float = 1.0, gpus_per_actor: float = 0.0, progress: bool = True,
                 init_options: dict[str, Any] | None = None) -> BatchResult:
    """Upscale ``jobs`` on Ray: ``address`` None starts (or joins, via ``RAY_ADDRESS``) a local runtime.

    ``actors`` 0 = as many as the cluster's CPUs (or GPUs, with ``gpus_per_actor``) allow. Results
    stream back as they finish; ``BatchResult`` is the same as ``run_jobs``'s.
    """
    result, start = BatchResult(), time.perf_counter()
    if not jobs:
        return result
    ray = connect_ray(address, init_options)
    rows = [{"source": str(j.source), "target": str(j.target), "png_taken": taken}
            for j, taken in zip(jobs, png_alternative_taken(jobs), strict=True)]
    pool = actors or actor_count(ray.cluster_resources(), cpus_per_actor, gpus_per_actor)
    dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * pool)).map_batches(
        UpscaleActor, fn_constructor_kwargs={"settings": asdict(settings)}, batch_size=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(pool, len(rows))), num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor or None)
    with tqdm(total=len(rows), unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for row in dataset.iter_rows():
            if row["error"]:
                result.failed.append((Path(row["source"]), row["error"]))
                bar.write(f"failed: {row['source']}: {row['error']}")
            else:
                result.written.append(Path(row["written"]))
            bar.update(1)
    result.seconds = time.perf_counter() - start
    return result


def connect_ray(address: str | None = None, init_options: dict[str, Any] | None = None):
    """The ``ray`` module, connected: to ``address``, or (None) to ``RAY_ADDRESS`` or a new local runtime.

    A runtime already started in this process (``ray.init`` by the caller) is used as it is.
    """
    ray = _import_ray()
    if not ray.is_initialized():
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, **(init_options or {}))
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise RayUnavailableError(f"could not start or reach the Ray cluster {address or '(local)'}: {err}") \
                from err
    return ray


def actor_count(resources: dict[str, float], cpus_per_actor: float, gpus_per_actor: float) -> int:
    """How many actors the cluster holds at once, at least one."""
    by_cpu = int(resources.get("CPU", 1) // max(cpus_per_actor, 1e-9))
    if gpus_per_actor:
        return max(1, min(by_cpu, int(resources.get("GPU", 0) // gpus_per_actor)))
    return max(1, by_cpu)


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail in seconds, not after Ray's minute of retries, when a ``host:port`` address answers nothing."""
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        raise RayUnavailableError(f"Ray address {address!r} is not auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as err:
        raise RayUnavailableError(f"could not start or reach the Ray cluster {address}: {err}") from err


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the data library: ray[data])
    except ImportError as err:
        raise RayUnavailableError(f"--ray needs Ray with its data library ({err}); install it with "
                                  "`bash scripts/install.sh --ray`") from err
    return ray


__all__ = ["RayUnavailableError", "UpscaleActor", "UpscaleSettings", "actor_count", "connect_ray",
           "png_alternative_taken", "run_jobs_ray"]
