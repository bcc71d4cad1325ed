"""Scalars that BasicSR training already wrote: tensorboard events, or the text log as a fallback.

BasicSR's ``MessageLogger`` writes every key of ``model.get_current_log()`` to the text log
``experiments/NAME/train_NAME_<time>.log`` and, with ``logger.use_tb_logger``, to tensorboard
under ``<root>/tb_logger/NAME/``: keys starting with ``l_`` as ``losses/<key>``, other keys
(``out_d_real``...) under their own name. ``SRModel._log_validation_metric_values`` writes
``metrics/<val set>/<metric>``. Both sources are turned into the same ``{tag: {iter: value}}``
mapping, so the plots never care where the numbers came from.

A resumed run starts a new events file and a new text log; ``merge_runs`` merges them in
order, dropping what an earlier run logged at or after the step a later run starts from
(the iterations that the resumed run replays), like tensorboard's orphan purge.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

Series = dict[int, float]  # iteration -> value, in ascending iteration order

LOSS_PREFIX = "losses/"
METRIC_PREFIX = "metrics/"


@dataclass
class Run:
    """The scalars of one events file or one text log, and the first iteration it covers."""

    tags: dict[str, Series]
    start: int


@dataclass
class TrainingScalars:
    """Every logged training scalar of one experiment, split the way the figures use them."""

    losses: dict[str, Series] = field(default_factory=dict)  # log key (l_g_pix, out_d_real...) -> series
    metrics: dict[str, dict[str, Series]] = field(default_factory=dict)  # val set -> metric -> series
    source: str = ""  # what was read: "tensorboard <dir>" or "text log <paths>"

    def __bool__(self) -> bool:
        return bool(self.losses or self.metrics)


def split_tags(tags: dict[str, Series]) -> tuple[dict[str, Series], dict[str, dict[str, Series]]]:
    """``{tag: series}`` as (losses by log key, metrics by val set and metric name)."""
    losses: dict[str, Series] = {}
    metrics: dict[str, dict[str, Series]] = {}
    for tag, series in tags.items():
        if tag.startswith(METRIC_PREFIX) and tag.count("/") >= 2:
            val_set, metric = tag[len(METRIC_PREFIX):].rsplit("/", 1)
            metrics.setdefault(val_set, {})[metric] = series
        else:
            key = tag[len(LOSS_PREFIX):] if tag.startswith(LOSS_PREFIX) else tag
            losses[key] = series
    return losses, metrics


def merge_runs(runs: Iterable[Run]) -> dict[str, Series]:
    """Merge runs in the order they ran: a later run replaces everything from its start on."""
    merged: dict[str, Series] = {}
    for run in runs:
        for tag, series in merged.items():
            merged[tag] = {step: v for step, v in series.items() if step < run.start}
        for tag, series in run.tags.items():
            merged.setdefault(tag, {}).update(series)
    return {tag: dict(sorted(series.items())) for tag, series in merged.items() if series}


# ---------------------------------------------------------------- tensorboard events


def read_event_file(path: str | Path) -> tuple[float, Run]:
    """(wall time of the file's first event, its scalars) read with tensorboard's EventAccumulator."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(path), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    tags = {tag: {int(e.step): float(e.value) for e in acc.Scalars(tag)} for tag in acc.Tags()[ea.SCALARS]}
    try:
        first_time = acc.FirstEventTimestamp()
    except ValueError:  # no events at all
        first_time = math.inf
    steps = [step for series in tags.values() for step in series]
    return first_time, Run(tags, min(steps, default=0))


def read_tensorboard(tb_dir: str | Path) -> dict[str, Series]:
    """All scalars of every events file in ``tb_dir``, merged oldest file first."""
    files = sorted(Path(tb_dir).glob("events.out.tfevents.*")) if Path(tb_dir).is_dir() else []
    runs = sorted((read_event_file(f) + (f.name,) for f in files), key=lambda r: (r[0], r[2]))
    return merge_runs(run for _, run, _ in runs if run.tags)


# ---------------------------------------------------------------- text log (MessageLogger)

_NUMBER = r"[-+]?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
_TRAIN_RE = re.compile(r"\[epoch:\s*-?\d+, iter:\s*([\d,]+), lr:\(.*?\)\]")
_PAIR_RE = re.compile(rf"(\w+): ({_NUMBER})(?=\s|$)")
_START_RE = re.compile(r"Start training from epoch: \d+, iter: (\d+)")
_VAL_RE = re.compile(r" INFO: Validation (.+?)\s*$")
_METRIC_RE = re.compile(rf"^\s*# (\w+): ({_NUMBER})(?:\s+Best: {_NUMBER} @ (\d+) iter)?")
_VAL_FREQ_RE = re.compile(r"^\s+val_freq:\s*([\d.eE+]+)\s*$", re.MULTILINE)
_ITERS_PER_EPOCH_RE = re.compile(r"Require iter number per epoch: (\d+)")
_TOTAL_ITERS_RE = re.compile(r"Total epochs: \d+; iters: (\d+)\.")
_END_RE = re.compile(r" INFO: End of training\.")
_BASELINE_RE = re.compile(r" INFO: Baseline validation \(iteration 0\)")  # models/training_guardrails.py


def _loss_tag(key: str) -> str:
    return LOSS_PREFIX + key if key.startswith("l_") else key  # MessageLogger's tensorboard naming


def _final_iter(text: str) -> int | None:
    """``current_iter`` of the validation after the training loop (basicsr/train.py).

    The loop breaks once ``current_iter`` passes ``total_iter`` and every remaining epoch of
    ``range(start_epoch, total_epochs + 1)`` adds one more: ``total + 1`` when ``total_iter``
    fills whole epochs, else ``total + 2`` (exact for a run that was not resumed).
    """
    per_epoch, total = _ITERS_PER_EPOCH_RE.search(text), _TOTAL_ITERS_RE.search(text)
    if not (per_epoch and total):
        return None
    total_iters = int(total.group(1))
    return total_iters + (1 if total_iters % int(per_epoch.group(1)) == 0 else 2)


def parse_train_log(text: str) -> Run:
    """Scalars of one ``train_NAME_<time>.log`` under the tags tensorboard would have used.

    A validation block carries no iteration; it is the first multiple of ``val_freq`` (from
    the options dump at the top of the log) not before the last training line, unless its
    ``Best: ... @ N iter`` names a later one (the block is the best so far). The final
    validation after ``End of training`` uses the iteration the loop ended on. A block announced
    as the baseline (the starting model, logged just before the first validation) is iteration 0.
    """
    freq_match = _VAL_FREQ_RE.search(text)
    val_freq = int(float(freq_match.group(1))) if freq_match else None
    tags: dict[str, Series] = {}
    start = lowest = 0  # lowest: the earliest iteration the next validation can have
    last_val: int | None = None
    round_sets: set[str] = set()  # val sets already seen in the current validation round
    ended = baseline = False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if m := _START_RE.search(line):
            start = lowest = int(m.group(1)) + 1
            round_sets = set()
        elif m := _TRAIN_RE.search(line):
            it = int(m.group(1).replace(",", ""))
            lowest, round_sets = max(lowest, it), set()
            rest = line[m.end():]
            rest = rest[rest.rfind("]") + 1:] if "[eta:" in rest else rest
            for key, value in _PAIR_RE.findall(rest):
                tags.setdefault(_loss_tag(key), {})[it] = float(value)
        elif _END_RE.search(line):
            ended, round_sets = True, set()
        elif _BASELINE_RE.search(line):
            baseline = True
        elif m := _VAL_RE.search(line):
            val_set = m.group(1)
            values: dict[str, float] = {}
            best_iters: list[int] = []
            while i < len(lines) and (mm := _METRIC_RE.match(lines[i])):
                values[mm.group(1)] = float(mm.group(2))
                if mm.group(3):
                    best_iters.append(int(mm.group(3)))
                i += 1
            if baseline:  # the starting model's scores (val_at_start), whenever they are logged
                baseline = False
                for metric, value in values.items():
                    tags.setdefault(f"{METRIC_PREFIX}{val_set}/{metric}", {})[0] = value
                continue
            if last_val is not None and round_sets and val_set not in round_sets:
                it = last_val  # another val set of the same validation round
            else:
                floor = max(lowest, last_val + 1 if last_val is not None else 0)
                later_best = [b for b in best_iters if b >= floor]
                if later_best:
                    it = max(later_best)
                elif ended and (final := _final_iter(text)) is not None and final >= floor:
                    it = final
                elif val_freq:
                    it = -(-max(floor, 1) // val_freq) * val_freq
                else:
                    it = floor
                round_sets = set()
            round_sets.add(val_set)
            last_val = it
            for metric, value in values.items():
                tags.setdefault(f"{METRIC_PREFIX}{val_set}/{metric}", {})[it] = value
    return Run(tags, start)


def read_train_logs(exp_dir: str | Path) -> tuple[dict[str, Series], list[Path]]:
    """Merged scalars of every ``train_NAME_*.log`` in ``exp_dir`` (oldest first), and the files read."""
    exp_dir = Path(exp_dir)
    files = sorted(exp_dir.glob(f"train_{exp_dir.name}_*.log"))
    runs = [parse_train_log(f.read_text(encoding="utf-8", errors="replace")) for f in files]
    return merge_runs(run for run in runs if run.tags), files


# ---------------------------------------------------------------- one experiment


def tb_dir_of(exp_dir: str | Path) -> Path:
    """``<root>/tb_logger/NAME`` for ``<root>/experiments/NAME``, where basicsr/train.py puts events."""
    exp_dir = Path(exp_dir).resolve()
    return exp_dir.parent.parent / "tb_logger" / exp_dir.name


def read_training_scalars(exp_dir: str | Path) -> TrainingScalars:
    """The experiment's scalars from tensorboard events, or from its text logs when there are none."""
    tb_dir = tb_dir_of(exp_dir)
    tags = read_tensorboard(tb_dir)
    source = f"tensorboard {tb_dir}"
    if not tags:
        tags, files = read_train_logs(exp_dir)
        source = "text log " + ", ".join(str(f) for f in files)
    losses, metrics = split_tags(tags)
    return TrainingScalars(losses, metrics, source if tags else "")
