"""Episodes: a trigger fires once when its condition starts to hold, and re-arms when it clears.

An *episode* is a run of consecutive days on which the condition holds. The trigger fires on the
day the run reaches ``for_days`` days, unless it fired on that account less than ``cooldown``
days before or the account is muted that day (suppressed); either way the episode is spent, and
the trigger re-arms only when the condition clears (or a day is missing: the account was not
evaluated, e.g. not a customer then). It fires at most once a day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Episode:
    """One trigger's state on one account: where the current run of held days began, whether it
    may fire, when it last fired, and the last day it was evaluated."""

    held_since: int | None = None
    armed: bool = True
    last_fired: int | None = None
    last_day: int | None = None

    def step(self, day: int, holds: bool, for_days: int = 1, cooldown: int = 0,
             muted: bool = False, gaps_clear: bool = True) -> bool:  # fmt: skip
        """Evaluate ``day``; whether the trigger fires. Re-evaluating the last day counts once; a
        day before the last one evaluated changes nothing (history is for replay). A day skipped
        clears the episode when ``gaps_clear`` (replay: every day is evaluated, so a gap means the
        account was not a customer); live evaluation passes False (a skipped day only means
        nobody looked)."""
        if self.last_day is not None and day < self.last_day:
            return False
        if gaps_clear and self.last_day is not None and day > self.last_day + 1:
            self.held_since, self.armed = None, True  # a gap: the condition was not seen to hold
        self.last_day = day
        if not holds:
            self.held_since, self.armed = None, True
            return False
        self.held_since = day if self.held_since is None else self.held_since
        if not self.armed or day - self.held_since + 1 < for_days:
            return False
        self.armed = False
        cooled = self.last_fired is None or day - self.last_fired >= max(cooldown, 1)
        if not cooled or muted:
            return False
        self.last_fired = day
        return True


def alert_days(
    days: Sequence[int], held: Sequence[bool], for_days: int = 1, cooldown: int = 0,
    muted: Sequence[bool] | None = None,
) -> list[int]:  # fmt: skip
    """The positions in ``days`` (ascending day numbers) on which the trigger fires."""
    episode = Episode()
    return [
        i for i, (day, holds) in enumerate(zip(days, held, strict=True))
        if episode.step(day, holds, for_days, cooldown, muted is not None and muted[i])
    ]  # fmt: skip
