"""The corpusmill service: a web app that schedules recipe runs as Ray jobs and serves their results."""

from __future__ import annotations

from corpusmill.service.settings import ServiceSettings, SettingsError, read_api_token

__all__ = ["ServiceSettings", "SettingsError", "create_app", "read_api_token", "serve"]


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """The FastAPI app (see app.create_app); imported lazily so `import corpusmill.service` stays light."""
    from corpusmill.service.app import create_app as factory

    return factory(*args, **kwargs)


def serve(**kwargs) -> None:  # type: ignore[no-untyped-def]
    """Run the service under uvicorn (see server.serve)."""
    from corpusmill.service.server import serve as run

    run(**kwargs)
