"""Information criteria, per-region selection across a hierarchy, and the token budget."""

from .budget import BudgetMerge, keep_mask, merge_to_budget
from .criteria import CRITERIA, Criterion, information_criterion, penalty
from .select import InformationSelector, Selection

__all__ = ["CRITERIA", "Criterion", "information_criterion", "penalty", "InformationSelector",
           "Selection", "BudgetMerge", "keep_mask", "merge_to_budget"]
