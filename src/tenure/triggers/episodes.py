"""Episodes: a trigger fires once when its condition starts to hold, and re-arms when it clears.

An *episode* is a run of consecutive days on which the condition holds. The trigger fires on the
day the run reaches ``for_days`` days, unless it fired on that account less than ``cooldown``
days before or the account is muted that day (suppressed); either way the episode is spent, and
the trigger re-arms only when the condition clears (or a day is missing: the account was not
evaluated, e.g. not a customer then).
"""

from __future__ import annotations

from collections.abc import Sequence


def alert_days(
    days: Sequence[int], held: Sequence[bool], for_days: int = 1, cooldown: int = 0,
    muted: Sequence[bool] | None = None,
) -> list[int]:  # fmt: skip
    """The positions in ``days`` (ascending day numbers) on which the trigger fires."""
    fired: list[int] = []
    streak, armed, last, previous = 0, True, None, None
    for i, (day, holds) in enumerate(zip(days, held, strict=True)):
        if previous is not None and day != previous + 1:
            streak, armed = 0, True  # a gap: the condition was not seen to hold
        previous = day
        if not holds:
            streak, armed = 0, True
            continue
        streak += 1
        if armed and streak >= for_days:
            armed = False
            cooled = last is None or day - last >= cooldown
            if cooled and not (muted is not None and muted[i]):
                fired.append(i)
                last = day
    return fired
