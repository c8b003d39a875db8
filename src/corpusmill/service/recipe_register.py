"""Registering a recipe from the pages: the form (pasted YAML or an uploaded file) and its POST.

Registering is an action like the others in page_actions.py: a form POST that needs the session cookie and
its CSRF token, answered with a 303 and a flash message. Its form is multipart (a file input beside the
textarea), and the service has no multipart library, so the body is read with the standard library's MIME
parser; a plain urlencoded form works too. A recipe is a few kilobytes, but this form takes as much as the
API does (`max_request_bytes`), since both register the same recipes. The form lives at `/recipes/-/new`:
a recipe name starts with a letter or digit, so no recipe's page (`/recipes/NAME`) can be that address.
"""

from __future__ import annotations

import codecs
import email.policy
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from corpusmill.core.recipe import RecipeError
from corpusmill.service.context import services
from corpusmill.service.page_actions import back, forbidden, form_fields
from corpusmill.service.page_render import render
from corpusmill.service.recipes import register_recipe
from corpusmill.service.session import csrf_ok, logged_in

router = APIRouter(include_in_schema=False)
NEW_RECIPE_URL = "/recipes/-/new"
MULTIPART = "multipart/form-data"


@dataclass
class RecipeForm:
    """What the register form posted: its text fields and its uploaded file, if one was chosen."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    upload: bytes | None = None


def _text(data: bytes) -> str:
    """A text field as the browser sent it (UTF-8, the pages' charset); a stray byte does not fail the form."""
    return data.decode("utf-8", errors="replace")


def _urlencoded(body: bytes) -> RecipeForm:
    return RecipeForm(form_fields(body))


def _multipart(body: bytes, content_type: str) -> RecipeForm:
    """The parts of a multipart/form-data body, read with the standard library's MIME parser (HTTP policy: no
    line-length limit). A body that does not parse as multipart reads as an empty form, so it fails CSRF."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", errors="replace")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    form = RecipeForm()
    if not message.is_multipart():
        return form
    for part in message.get_payload():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = None if part.is_multipart() else part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None:
            if name == "file" and payload:  # an empty file input sends a part with no content
                form.filename, form.upload = part.get_filename(), payload
        else:
            form.fields.setdefault(name, _text(payload))
    return form


async def _recipe_form(request: Request, limit: int) -> RecipeForm | None:
    """The posted form, urlencoded or multipart; None when the body is over `limit` bytes."""
    try:
        body = await request.body()
    except StarletteHTTPException as exc:  # the size limit counting a chunked body
        if exc.status_code == status.HTTP_413_CONTENT_TOO_LARGE:
            return None
        raise
    if len(body) > limit:
        return None
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == MULTIPART:
        return _multipart(body, content_type)
    return _urlencoded(body)


def _newlines(text: str) -> str:
    """Browsers send a textarea with CRLF line ends; a version stored with them would differ from the one
    before on every line of the recipe page's diff."""
    return text.replace("\r\n", "\n")


def _uploaded_text(form: RecipeForm) -> str:
    """The uploaded file as text (a byte-order mark dropped); RecipeError naming the first byte that is not
    UTF-8 and its line, since an editor that saved another encoding gives no other hint."""
    data = (form.upload or b"").removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RecipeError(
            form.filename or "the upload",
            [
                f"the file {form.filename!r} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                "save it as UTF-8 and upload it again, or paste the recipe instead"
            ],
        ) from None


def _recipe_text(form: RecipeForm) -> str:
    """The recipe the form carries: a chosen file wins over the textarea; RecipeError when there is neither."""
    text = _uploaded_text(form) if form.upload is not None else form.fields.get("yaml", "")
    if not text.strip():
        raise RecipeError("the form", ["the form has no recipe: paste its YAML or choose a .yaml file"])
    return _newlines(text)


def _form_page(
    request: Request, text: str = "", problems: list[str] | None = None, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    limit = services(request).settings.max_request_bytes
    return render(
        request,
        "recipe_new.html",
        status_code=status_code,
        text=text,
        problems=problems or [],
        limit=limit,
        **extra,
    )


@router.get(NEW_RECIPE_URL, response_class=HTMLResponse)
def new_recipe_page(request: Request) -> HTMLResponse:
    """The register form, empty or (`?from=NAME`) holding the newest version's YAML to edit into the next."""
    source = request.query_params.get("from", "").strip()
    if not source:
        return _form_page(request)
    recipe = services(request).store.recipe(source)
    if recipe is None:
        return _form_page(
            request,
            status_code=status.HTTP_404_NOT_FOUND,
            note=f"There is no recipe {source!r} to start from.",
        )
    return _form_page(request, text=recipe.yaml, source=recipe)


@router.post(NEW_RECIPE_URL)
async def post_new_recipe(request: Request) -> Response:
    """Register a recipe as `POST /api/recipes` does: a new version when it changed, the same one when not,
    the form again with every problem (and the text as posted) when it is invalid."""
    svc = services(request)
    limit = svc.settings.max_request_bytes
    form = await _recipe_form(request, limit)
    if form is None:
        if not logged_in(request):
            return forbidden(request)
        problem = (
            f"the request is larger than this service accepts ({limit:,} bytes); recipes are much smaller"
        )
        return _form_page(request, problems=[problem], status_code=status.HTTP_413_CONTENT_TOO_LARGE)
    if not csrf_ok(request, form.fields.get("csrf", "")):
        return forbidden(request)
    typed = _newlines(form.fields.get("yaml", ""))
    try:
        text = _recipe_text(form)
        recipe, created = await run_in_threadpool(
            register_recipe, svc.store, text, svc.clock(), svc.settings.jobs_share_this_disk()
        )
    except RecipeError as exc:
        kept = typed
        if form.upload is not None:  # show the file's text, when it is text, so it can be fixed here
            kept = _newlines(_text(form.upload).removeprefix("\ufeff"))
        return _form_page(
            request, text=kept, problems=exc.problems, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    if created:
        message = f"Recipe {recipe.name} v{recipe.version} registered."
    else:
        message = f"Recipe {recipe.name} unchanged (same as v{recipe.version})."
    return back(f"/recipes/{quote(recipe.name, safe='')}", message)
