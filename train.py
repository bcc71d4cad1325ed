"""Train with BasicSR's own loop: ``python train.py -opt options/esrgan_x4.yml [--auto_resume]``.

``--check`` checks the option file, its data and its checkpoints without training (exit 0, or 2
with every problem: docs/checking-options.md); ``--no-check`` skips the option validation.

``realesrgan_ext.register()`` applies the basicsr compatibility fixes and registers our
architectures, datasets, losses and models; the option file is then validated (an unknown or
contradictory key stops the run with its name and the nearest valid one), and ``experiments/``
and ``tb_logger/`` are written next to this file. A run stopped by ``val.collapse_guard`` exits
with status 1 and its message (the iteration, and the last good checkpoint).
Several processes: ``torchrun --nproc_per_node=N train.py -opt ... --launcher pytorch``.
"""

from pathlib import Path

import realesrgan_ext


def main() -> None:
    realesrgan_ext.register()  # fixes basicsr and registers the plugin; must precede basicsr
    from basicsr.train import train_pipeline

    from realesrgan_ext.models.training_guardrails import TrainingCollapse
    from realesrgan_ext.option_check import run_from_argv

    run_from_argv()  # --check: check only (exit 0 or 2); --no-check: skip; else validate, then train
    try:
        train_pipeline(str(Path(__file__).resolve().parent))
    except TrainingCollapse as collapse:  # val.collapse_guard: the message says where the good model is
        raise SystemExit(f"error: {collapse}") from None
    close_process_group()


def close_process_group() -> None:
    """Leave a multi-process run together: rank 0 validates after the last iteration while the
    others are done, and a process exiting with its gloo / nccl group still open can abort
    ("terminate called without an active exception", exit -6), failing the whole torchrun."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
