"""A local web page for upscaling (``scripts/webui.py``), on Gradio and the project's own engine.

* ``settings``: ``WebSettings`` and the defaults (no heavy imports: the script's ``--help``);
* ``model_choices``: the models offered (bundled official ones, ``experiments/*/models/``
  checkpoints) and the ``Upscaler`` kept between requests;
* ``uploads``: uploaded images and zips as named images with safe output folders;
* ``runs``: one request's upscaling into a new folder, failures per file, previews;
* ``app``: the Gradio page and ``launch`` (imports Gradio, an optional extra:
  ``bash scripts/install.sh --web``).
"""
