"""Seconds per training iteration of our ESRGAN model vs BasicSR's stock ESRGANModel, each speed option on/off.

    python scripts/benchmark_train.py                      # ESRGAN's RRDB 64/23/32, batch 2 x 64 px, CPU
    python scripts/benchmark_train.py --quick              # a tiny network: checks that everything runs
    python scripts/benchmark_train.py --device cuda --batch 16 --gt-size 128 --iterations 20
    python scripts/benchmark_train.py --finetune          # the x4plus fine-tune (finetune_demo_x4plus.yml):
                                                          # fp32 / bf16 s/iter and peak memory

Both models train the same networks with the ESRGAN losses on the same in-memory batches;
the speed-up column is stock s/iter divided by ours (above 1 = ours is faster). For
``grad_accum_steps=2`` an iteration is one micro-batch of the same size. ``--finetune [OPTION_FILE]``
instead times a fine-tune recipe as it trains (its model, losses, degradation pipeline and pool;
the starting weights loaded) with ``train.speed`` fp32, bf16 and bf16 + channels_last, each in its
own process, and reports each one's peak memory. Time it on an otherwise idle machine: another
process on the same cores distorts every row.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from realesrgan_ext.tools.train_benchmark import (
    CONFIGS,
    FINETUNE_CONFIGS,
    BenchmarkSettings,
    format_finetune_table,
    format_table,
    run_benchmark,
    run_finetune_benchmark,
)

FINETUNE_OPTION = Path(__file__).resolve().parents[1] / "options" / "finetune_demo_x4plus.yml"

QUICK = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "d_feat": 8, "gt_size": 32, "batch": 2,
         "warmup": 1, "iterations": 1, "rounds": 1}


def main(argv: list[str] | None = None) -> int:
    defaults = BenchmarkSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(BenchmarkSettings):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(getattr(defaults, field.name)),
                            default=None, help=f"default {getattr(defaults, field.name)}")
    parser.add_argument("--quick", action="store_true", help="tiny network, one iteration each, no compile")
    parser.add_argument("--configs", nargs="+", metavar="NAME", default=None,
                        help="configurations to time (the stock model always runs): " + "; ".join(CONFIGS))
    parser.add_argument("--output", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--finetune", nargs="?", type=Path, const=FINETUNE_OPTION, default=None,
                        metavar="OPTION_FILE", help="time a fine-tune recipe instead (default "
                        f"{FINETUNE_OPTION.name}); configurations: {', '.join(FINETUNE_CONFIGS)}; uses --warmup, "
                        "--iterations and --configs")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each --finetune process")
    args = parser.parse_args(argv)
    if args.finetune is not None:
        return finetune(args, parser)
    chosen = {**(QUICK if args.quick else {}),
              **{f.name: getattr(args, f.name) for f in dataclasses.fields(BenchmarkSettings)
                 if getattr(args, f.name) is not None}}
    settings = BenchmarkSettings(**chosen)
    configs = args.configs or [n for n in CONFIGS if not (args.quick and "compile" in n)]
    try:
        rows = run_benchmark(settings, configs, progress=lambda m: print(m, file=sys.stderr, flush=True))
    except ValueError as err:
        parser.error(str(err))
    table = format_table(rows, settings)
    print(table)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table + "\n")
    return 0


def finetune(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    iterations = args.iterations or 5
    try:
        rows = run_finetune_benchmark(args.finetune, args.configs, args.warmup or 1, iterations, args.threads,
                                      progress=lambda m: print(m, file=sys.stderr, flush=True))
    except (ValueError, OSError) as err:
        parser.error(str(err))
    table = format_finetune_table(rows, args.finetune, iterations, args.threads)
    print(table)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
