"""The decisions a model learns from, and how many it needs before it ranks: no scikit-learn, so that
digests and pages can say "ranking starts after N more decisions" without loading the model's libraries.

Cold start: a model needs MIN_INCLUDED inclusions and MIN_EXCLUDED exclusions. Both are 1, by measurement:
a model trained on 1 inclusion and 1 exclusion already orders later papers with an AUC of 0.65-0.92 on
average over the four datasets (below 0.5 in at most 7 % of draws), and every further inclusion required
before ranking cost the screening simulation 0.02-0.09 of recall after 10 % screened (ADHD 0.55 at 1, 0.50 at
2, 0.44 at 3, 0.32 at 5): waiting for a surer model loses more than an early, rougher one does.
"""

from __future__ import annotations

INCLUDE = "include"
EXCLUDE = "exclude"
MAYBE = "maybe"
DECISIONS = (INCLUDE, EXCLUDE, MAYBE)

MIN_INCLUDED = 1
MIN_EXCLUDED = 1


def decisions_needed(included: int, excluded: int) -> int:
    """How many more decisions before ranking starts: the inclusions and exclusions still missing (0: it ranks)."""
    return max(0, MIN_INCLUDED - included) + max(0, MIN_EXCLUDED - excluded)
