"""Load in steps: ``"2:20,32:40"`` is 2 users for 20 s, then 32 users for 40 s."""

from __future__ import annotations


def parse_steps(text: str) -> list[tuple[int, float]]:
    """``"2:20,32:40"`` as [(users, seconds), ...]; a clear error for anything else."""
    steps = []
    for part in text.split(","):
        users, _, seconds = part.partition(":")
        if not (users.strip().isdigit() and seconds.strip().replace(".", "", 1).isdigit()):
            raise ValueError(f"steps: {part!r} is not users:seconds")
        steps.append((int(users), float(seconds)))
    return steps


def users_at(steps: list[tuple[int, float]], second: float) -> int | None:
    """Users the steps ask for ``second`` seconds in; None once they are over."""
    end = 0.0
    for users, seconds in steps:
        end += seconds
        if second < end:
            return users
    return None
