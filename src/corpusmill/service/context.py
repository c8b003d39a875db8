"""What the routes share: the store, the run manager, the scheduler, the settings and the clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from corpusmill.service.runs import RunManager
from corpusmill.service.scheduler import Scheduler
from corpusmill.service.settings import ServiceSettings
from corpusmill.service.store import Store


@dataclass
class Services:
    """The service's parts, built at start-up (see app.py)."""

    settings: ServiceSettings
    store: Store
    manager: RunManager
    scheduler: Scheduler
    clock: Callable[[], dt.datetime]


def services(request: Request) -> Services:
    """FastAPI dependency: the running service's parts."""
    found = getattr(request.app.state, "services", None)
    if found is None:
        raise RuntimeError("the service is not started: run the app under its lifespan (uvicorn does)")
    return found
