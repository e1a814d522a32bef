"""placeholder"""

from rootcanary.classify.engine import Classifier, classify, classify_files

__all__ = ["Classifier", "classify", "classify_files"]
