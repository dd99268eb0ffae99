"""Pure tensor functions behind FastV: ranking, selection, gathering. No model knowledge lives here."""

from fastv.core.gather import gather_positions, gather_sequence
from fastv.core.ranking import last_token_scores, mean_query_scores, random_scores
from fastv.core.segments import contiguous_runs, split_runs
from fastv.core.selection import KeepPlan, plan_keep, segment_drops

__all__ = [
    "KeepPlan",
    "contiguous_runs",
    "gather_positions",
    "gather_sequence",
    "last_token_scores",
    "mean_query_scores",
    "plan_keep",
    "random_scores",
    "segment_drops",
    "split_runs",
]
