"""Evaluation: compare bicubic and any models on HR/LR pairs and real photos, with a report.

    from realesrgan_ext.evaluation import evaluate

    report = evaluate(["realesrgan-x4plus", "tuned=net_g_best.pth"], "results/eval",
                      hr="photos/val", degradation="my_damage.yml")
    report.means()["tuned"]["psnr_y"]
    report.beats("tuned", "realesrgan-x4plus", ("psnr_y", "stlpips"))

``scripts/evaluate.py`` is the command-line front; ``docs/evaluating.md`` the user's guide.
"""

from realesrgan_ext.evaluation.image_sets import DEFAULT_MAX_PIXELS
from realesrgan_ext.evaluation.metrics import METRICS, Metric
from realesrgan_ext.evaluation.photos import EvaluationError
from realesrgan_ext.evaluation.report_files import means_markdown
from realesrgan_ext.evaluation.results import EvaluationReport, Score
from realesrgan_ext.evaluation.runner import evaluate

__all__ = ["DEFAULT_MAX_PIXELS", "METRICS", "EvaluationError", "EvaluationReport", "Metric", "Score", "evaluate",
           "means_markdown"]
