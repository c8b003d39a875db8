"""The app factory: one FastAPI app with the API, the pages, and the background loops in its lifespan.

Everything the service holds is in the database, so start-up is the same whether it is the first or the
hundredth: open the database, connect to Ray (or start a local head with the Jobs API when no address is
given), re-attach runs that were in flight, then follow jobs and fire schedules until shutdown. The local
head, when there is one, belongs to the service and is stopped with it; a cluster given by address is left
running. The clock is a parameter so schedules can be tested without waiting for real cron ticks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from corpusmill import __version__
from corpusmill.service.api import router as api_router
from corpusmill.service.body_limit import BodySizeLimit
from corpusmill.service.context import Services
from corpusmill.service.db import make_engine
from corpusmill.service.docs import install_docs
from corpusmill.service.errors import install_error_handlers
from corpusmill.service.jobs import RayJobs
from corpusmill.service.loops import PeriodicThread
from corpusmill.service.page_render import compile_templates
from corpusmill.service.pages import router as pages_router
from corpusmill.service.ray_head import LocalRayHead
from corpusmill.service.runs import RunManager
from corpusmill.service.scheduler import Scheduler
from corpusmill.service.session import SESSION_SECRET_NAME, new_secret
from corpusmill.service.settings import ServiceSettings, read_ray_token
from corpusmill.service.store import Store, utcnow

logger = logging.getLogger(__name__)


def jobs_address(address: str) -> str:
    """The Jobs API URL of a cluster address (`host:8265` -> `http://host:8265`)."""
    return address if "://" in address else f"http://{address}"


def create_app(settings: ServiceSettings, clock: Callable[[], dt.datetime] = utcnow) -> FastAPI:
    """The service as an ASGI app; resources are opened and closed by its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Open the database and Ray, recover runs, run the loops; undo it all on shutdown."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url())
        head: LocalRayHead | None = None
        loops: list[PeriodicThread] = []
        try:
            if settings.ray_address is None:
                head = LocalRayHead(num_cpus=settings.ray_num_cpus, nice=settings.ray_nice).start()
                jobs = RayJobs(head.dashboard_url, head.token)
            else:
                token = settings.ray_token.get_secret_value() if settings.ray_token else read_ray_token()
                jobs = RayJobs(jobs_address(settings.ray_address), token)
            store = Store(engine)
            manager = RunManager(
                store,
                jobs,
                settings.runs_root(),
                settings.python_for_jobs(local_head=head is not None),
                clock,
            )
            scheduler = Scheduler(store, manager, clock)
            app.state.services = Services(settings, store, manager, scheduler, clock)
            app.state.session_secret = bytes.fromhex(store.secret(SESSION_SECRET_NAME, new_secret))
            app.state.ray_address = jobs.address
            manager.recover()
            compile_templates()
            # What start-up made lives as long as the service: keep it out of the garbage collector's full
            # passes, which otherwise walk it all (tens of milliseconds with every request waiting) each time
            # enough short-lived request objects have come and gone.
            gc.collect()
            gc.freeze()
            loops = [
                PeriodicThread("poller", settings.poll_interval_s, manager.poll_once).start(),
                PeriodicThread("scheduler", settings.schedule_interval_s, scheduler.tick).start(),
            ]
            logger.info("corpusmill service ready; Ray Jobs API at %s", jobs.address)
            yield
        finally:
            for loop in loops:
                loop.stop()
            if head is not None:
                head.stop()
            engine.dispose()

    app = FastAPI(
        title="corpusmill service",
        version=__version__,
        description="Schedule corpus rebuilds on a Ray cluster; browse runs, their artifacts and mixture reports. "
        "Calls that change state need `Authorization: Bearer <token>`.",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by install_docs
        redoc_url=None,  # ReDoc has no offline bundle here
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)
    install_docs(app)
    app.include_router(api_router)
    app.include_router(pages_router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        """For load balancers and probes: the app is up; which Jobs API it uses."""
        return {"ok": True, "ray": getattr(app.state, "ray_address", None)}

    return app
