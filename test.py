"""Test a model with BasicSR's own loop: ``python test.py -opt options/test/test_realesrgan_x4plus.yml``.

``realesrgan_ext.register()`` applies the basicsr compatibility fixes and registers our parts,
then BasicSR's ``test_pipeline`` runs every ``datasets`` entry of the option file through the
model's validation: metrics in ``results/<name>/test_<name>_<time>.log`` (and, for this
project's models, ``results/<name>/metrics_<set>.json``), images in
``results/<name>/visualization/<set>/`` when ``val.save_img`` is true. BasicSR's own
``options/test/`` files run too once their data paths point at real folders.
"""

from pathlib import Path

import realesrgan_ext


def main() -> None:
    realesrgan_ext.register()  # fixes basicsr and registers the plugin; must precede basicsr
    from basicsr.test import test_pipeline

    test_pipeline(str(Path(__file__).resolve().parent))


if __name__ == "__main__":
    main()
