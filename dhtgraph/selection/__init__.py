"""Information criteria, per-region selection across a hierarchy, and the token budget."""

from .budget import BudgetMerge, keep_mask, merge_to_budget
from .criteria import CRITERIA, Criterion, information_criterion, penalty, penalty_table
from .select import (CRITERION_FUNCTIONS, ICStopping, InformationSelector, Selection, ic_stopping,
                     select_partition)

__all__ = ["CRITERIA", "Criterion", "information_criterion", "penalty", "penalty_table",
           "InformationSelector",
           "Selection", "BudgetMerge", "keep_mask", "merge_to_budget", "select_partition",
           "ic_stopping", "ICStopping", "CRITERION_FUNCTIONS"]
