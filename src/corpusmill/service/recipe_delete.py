"""Deleting a recipe (`DELETE /api/recipes/{name}` and the recipe page): only one that no schedule uses and
no run is building.

A schedule naming a deleted recipe would fail at every tick, and a run in flight still reads its version, so
both refuse the delete with a reason people can act on. The store then marks the versions deleted: they are
hidden, and the finished runs that point at them keep their recipe.
"""

from __future__ import annotations

import datetime as dt

from corpusmill.service.store import ACTIVE, Store


class RecipeInUse(RuntimeError):
    """The recipe cannot be deleted now; the message says what holds it, `holders` the same as data
    (`{"schedules": [ids]}` or `{"runs": [ids]}`)."""

    def __init__(self, message: str, holders: dict[str, list[int]]) -> None:
        super().__init__(message)
        self.holders = holders


def delete_recipe(store: Store, name: str, now: dt.datetime) -> bool:
    """Delete every version of `name`; False if there is none, RecipeInUse if something still needs it."""
    if store.recipe(name) is None:
        return False
    using = [s.id for s in store.schedules() if s.recipe == name]
    if using:
        listed = ", ".join(f"#{i}" for i in using)
        raise RecipeInUse(
            f"schedule {listed} uses recipe {name}; delete or change it first", {"schedules": using}
        )
    in_flight = [r.id for r in store.runs(statuses=ACTIVE, recipe=name)]
    if in_flight:
        listed = ", ".join(f"#{i}" for i in in_flight)
        raise RecipeInUse(
            f"run {listed} of recipe {name} is in flight; cancel it or let it end", {"runs": in_flight}
        )
    return store.delete_recipe(name, now) > 0
