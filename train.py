"""Train with BasicSR's own loop: ``python train.py -opt options/esrgan_x4.yml [--auto_resume]``.

``realesrgan_ext.register()`` applies the basicsr compatibility fixes and registers our
architectures, datasets, losses and models; the option file is then validated (an unknown or
contradictory key stops the run with its name and the nearest valid one), and ``experiments/``
and ``tb_logger/`` are written next to this file.
Several processes: ``torchrun --nproc_per_node=N train.py -opt ... --launcher pytorch``.
"""

from pathlib import Path

import realesrgan_ext


def main() -> None:
    realesrgan_ext.register()  # fixes basicsr and registers the plugin; must precede basicsr
    from basicsr.train import train_pipeline

    from realesrgan_ext.option_validation import validate_option_file_from_argv

    validate_option_file_from_argv()
    train_pipeline(str(Path(__file__).resolve().parent))


if __name__ == "__main__":
    main()
