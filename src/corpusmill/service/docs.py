"""Swagger UI at /docs, served from an installed package so it works without internet.

FastAPI's default /docs page loads Swagger UI's script and style from a CDN, which leaves it blank on a
machine that cannot reach one (a cluster's private network, an air-gapped site). The `fastapi-swagger`
package ships the Swagger UI distribution; its files are mounted under /docs/assets and the page references
only them. ReDoc would need its own bundle from a CDN, so it is switched off (see app.py).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Mount the Swagger UI files and serve /docs from them (the app is created with docs_url=None)."""
    assets = resources.files("fastapi_swagger") / "resources"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="swagger-ui-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        """The interactive API documentation, from local assets only."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )
