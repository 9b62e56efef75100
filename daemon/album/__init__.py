"""Album selection: moments, near-duplicate clusters, brackets and panoramas,
the pick of each cluster (composite, comparator tie-break, floors, manual
choices), the record of every run, and export (link folder, XMP sidecars)."""

from .apply import SelectionResult
from .choose import Comparator, Member, choose_cluster
from .selection import run_selection

__all__ = ["Comparator", "Member", "SelectionResult", "choose_cluster", "run_selection"]
