"""The paper's attention study and pictures of what FastV keeps (plots need ``matplotlib``: ``fastv[plot]``)."""

from fastv.analysis.report import StudyReport, StudySample, analyze_many, samples_from
from fastv.analysis.study import CLASSES, QUERY_SETS, SampleAnalysis, analyze, token_classes

__all__ = [
    "CLASSES",
    "QUERY_SETS",
    "SampleAnalysis",
    "StudyReport",
    "StudySample",
    "analyze",
    "analyze_many",
    "samples_from",
    "token_classes",
]
