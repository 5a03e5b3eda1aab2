"""ethoedge.evaluate: metrics, cross-validation by animal, aggregation and the report."""

from ethoedge.evaluate.metrics import classification_metrics, per_class_csv, save_confusion
from ethoedge.evaluate.report import Report, md_table

__all__ = ["Report", "classification_metrics", "md_table", "per_class_csv", "save_confusion"]
