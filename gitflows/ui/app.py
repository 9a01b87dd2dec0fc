"""The web app: Starlette routes over :mod:`gitflows.ui.views`, HTML through Jinja2, JSON under ``/api``.

Read-only unless a token is configured. With one, the pages' forms (start a run, cancel a scheduled run)
need a session (``/login`` with the token; an HMAC-signed cookie, HttpOnly, SameSite=Strict) and the
form's CSRF token (an HMAC of the session); the API needs ``Authorization: Bearer <token>``. The token
itself is never stored in a cookie, rendered or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from gitflows.errors import FlowNotFoundError, GitflowsError, NotFoundError
from gitflows.params import ParameterError, check_against, parse_value
from gitflows.redact import get_logger, redact
from gitflows.registry import Registry, open_registry
from gitflows.ui import views

log = get_logger(__name__)
HERE = Path(__file__).parent
COOKIE = "gitflows_session"
SUBMISSIONS_KEPT = 1000
LOGIN_FAILURES, LOGIN_WINDOW = 5, 60.0  # wrong tokens from one address, within seconds, before it must wait
Handler = Callable[[Request], Awaitable[Response]]


class UI:
    """The app's state: where the registry is, and the token (None: read-only)."""

    def __init__(self, registry_url: str | None, token: str | None) -> None:
        self.registry_url = registry_url
        self.token = token or None
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["graph_svg"] = graph_svg
        # runs created per submission key (a form's hidden field, the API's Idempotency-Key): a double click
        # or a retried request starts one run, not two. Handlers run one at a time on the event loop, so
        # look-up and insert cannot interleave (several worker processes would each keep their own).
        self.submitted: OrderedDict[str, int] = OrderedDict()
        self.failures: dict[str, list[float]] = {}  # client address -> times of its recent wrong tokens

    def remember(self, key: str, run_id: int) -> None:
        self.submitted[key] = run_id
        while len(self.submitted) > SUBMISSIONS_KEPT:
            self.submitted.popitem(last=False)

    def throttled(self, client: str) -> float:
        """Seconds *client* must wait before trying another token (0: it may): LOGIN_FAILURES wrong tokens
        within LOGIN_WINDOW seconds lock it out for the rest of that window."""
        now = time.monotonic()
        recent = [t for t in self.failures.get(client, []) if now - t < LOGIN_WINDOW]
        self.failures[client] = recent
        return LOGIN_WINDOW - (now - recent[0]) if len(recent) >= LOGIN_FAILURES else 0.0

    def failed_login(self, client: str) -> None:
        self.failures.setdefault(client, []).append(time.monotonic())
        if len(self.failures) > SUBMISSIONS_KEPT:  # many addresses: forget the oldest
            self.failures.pop(next(iter(self.failures)))

    def registry(self) -> Registry:
        return open_registry(self.registry_url, create=False)

    # -- sessions -------------------------------------------------------------------------------
    def _sign(self, what: str) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), what.encode(), hashlib.sha256).hexdigest()

    def session(self, request: Request) -> str | None:
        """The session nonce when the request carries a valid session cookie."""
        if self.token is None:
            return None
        nonce, _, mac = (request.cookies.get(COOKIE) or "").partition(".")
        return nonce if nonce and hmac.compare_digest(mac, self._sign("session:" + nonce)) else None

    def csrf(self, nonce: str | None) -> str | None:
        return self._sign("csrf:" + nonce) if nonce else None

    def bearer_ok(self, request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return self.token is not None and given.startswith("Bearer ") and \
            hmac.compare_digest(given[len("Bearer "):].encode(), self.token.encode())

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        nonce = self.session(request)
        context.update(request=request, can_act=nonce is not None, csrf=self.csrf(nonce),
                       actions_configured=self.token is not None, run_states=views.RUN_STATES,
                       submission=secrets.token_hex(16))
        return self.templates.TemplateResponse(request, template, context, status_code=status)


def graph_svg(structure: dict[str, Any] | None, states: dict[str, str] | None = None) -> str:
    """The flow graph as inline SVG, or '' when there is nothing to draw or no Graphviz here."""
    if not structure:
        return ""
    from gitflows.visualize import from_structure, svg

    try:
        drawn = svg(from_structure(structure, states))
    except GitflowsError as exc:
        log.warning("cannot draw the flow graph: %s", exc)
        return ""
    return drawn[drawn.find("<svg"):]


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def with_registry(request: Request, kind: str, fn: Callable[[Registry], Response]) -> Response:
    """``fn(registry)``, with the registry opened for this request and closed after it: a registry that cannot
    be opened or does not answer is a 503, an unknown flow or run a 404 (pages, or JSON for the API)."""
    ui: UI = request.app.state.ui
    try:
        reg = ui.registry()
    except GitflowsError as exc:
        return _failure(ui, request, kind, 503, f"the registry cannot be opened: {exc}")
    try:
        return fn(reg)
    except (FlowNotFoundError, NotFoundError) as exc:
        return _failure(ui, request, kind, 404, str(exc))
    except GitflowsError as exc:
        return _failure(ui, request, kind, 503, f"the registry did not answer: {exc}")
    finally:
        reg.close()


def guarded(kind: str) -> Callable[[Callable[[Request, Registry], Response]], Handler]:
    """A read-only handler ``fn(request, registry)`` run through :func:`with_registry`."""

    def wrap(fn: Callable[[Request, Registry], Response]) -> Handler:
        async def handler(request: Request) -> Response:
            return with_registry(request, kind, lambda reg: fn(request, reg))
        return handler
    return wrap


# -- pages -------------------------------------------------------------------------------------


@guarded("page")
def flows_page(request: Request, reg: Registry) -> Response:
    ui: UI = request.app.state.ui
    label, state = request.query_params.get("label") or None, request.query_params.get("state") or None
    listing = views.flows(reg, label, state, _int(request.query_params.get("page"), 1))
    return ui.page(request, "flows.html", listing=listing, flows=listing["flows"], label=label, state=state,
                   labels=listing["all_labels"])


@guarded("page")
def flow_page(request: Request, reg: Registry) -> Response:
    ui: UI = request.app.state.ui
    return ui.page(request, "flow.html", flow=views.flow(reg, request.path_params["name"]), error=None, values={})


@guarded("page")
def version_page(request: Request, reg: Registry) -> Response:
    ui: UI = request.app.state.ui
    detail = views.version(reg, request.path_params["name"], request.path_params["version"])
    return ui.page(request, "version.html", v=detail)


@guarded("page")
def runs_page(request: Request, reg: Registry) -> Response:
    ui: UI = request.app.state.ui
    q = request.query_params
    listing = views.runs(reg, _int(q.get("page"), 1), q.get("flow") or None, q.get("state") or None)
    return ui.page(request, "runs.html", listing=listing)


@guarded("page")
def run_page(request: Request, reg: Registry) -> Response:
    ui: UI = request.app.state.ui
    return ui.page(request, "run.html", run=views.run(reg, request.path_params["id"]))


@guarded("page")
def agents_page(request: Request, reg: Registry) -> Response:
    ui: UI = request.app.state.ui
    return ui.page(request, "agents.html", agents=views.agents(reg))


async def login_page(request: Request) -> Response:
    ui: UI = request.app.state.ui
    if request.method == "GET":
        return ui.page(request, "login.html", error=None)
    form = await request.form()
    given = str(form.get("token") or "")
    if ui.token is None:
        return ui.page(request, "login.html", status=403, error="this page is read-only: no token is configured "
                                                                 "(start it with GITFLOWS_UI_TOKEN naming a secret)")
    client = _client(request)
    wait = ui.throttled(client)
    if wait > 0:
        response = ui.page(request, "login.html", status=429,
                           error=f"too many wrong tokens from {client}; try again in {wait:.0f} s")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if not hmac.compare_digest(given.encode(), ui.token.encode()):
        ui.failed_login(client)
        log.warning("ui: wrong token given at /login from %s", client)
        return ui.page(request, "login.html", status=403, error="wrong token")
    nonce = secrets.token_hex(16)
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # only pages of this site: never an open redirect
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, f"{nonce}.{ui._sign('session:' + nonce)}", httponly=True, samesite="strict")
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE)
    return response


async def start_run_form(request: Request) -> Response:
    ui: UI = request.app.state.ui
    form = await request.form()
    name = request.path_params["name"]
    denied = _form_denied(ui, request, str(form.get("csrf") or ""))
    if denied:
        return denied
    pairs = {k[len("param:"):]: str(v) for k, v in form.multi_items() if k.startswith("param:") and str(v) != ""}
    key = f"form:{name}:{form.get('submission') or secrets.token_hex(16)}"

    def start(reg: Registry) -> Response:
        if key in ui.submitted:  # the same form sent again (a double click, a reload): the run it started
            return RedirectResponse(f"/runs/{ui.submitted[key]}", status_code=303)
        try:
            created = _create_run(reg, name, {k: parse_value(k, v) for k, v in pairs.items()})
        except ParameterError as exc:
            return ui.page(request, "flow.html", status=400, flow=views.flow(reg, name), error=str(exc),
                           values=pairs)
        ui.remember(key, created)
        return RedirectResponse(f"/runs/{created}", status_code=303)

    return with_registry(request, "page", start)


async def cancel_run_form(request: Request) -> Response:
    ui: UI = request.app.state.ui
    form = await request.form()
    denied = _form_denied(ui, request, str(form.get("csrf") or ""))
    if denied:
        return denied
    return _cancel(request, "page", request.path_params["id"])

# -- API ---------------------------------------------------------------------------------------


@guarded("api")
def api_flows(request: Request, reg: Registry) -> Response:
    q = request.query_params
    return JSONResponse(views.flows(reg, q.get("label") or None, q.get("state") or None, _int(q.get("page"), 1)))


@guarded("api")
def api_flow(request: Request, reg: Registry) -> Response:
    return JSONResponse(views.flow(reg, request.path_params["name"]))


@guarded("api")
def api_version(request: Request, reg: Registry) -> Response:
    return JSONResponse(views.version(reg, request.path_params["name"], request.path_params["version"]))


@guarded("api")
def api_runs(request: Request, reg: Registry) -> Response:
    q = request.query_params
    return JSONResponse(views.runs(reg, _int(q.get("page"), 1), q.get("flow") or None, q.get("state") or None))


@guarded("api")
def api_run(request: Request, reg: Registry) -> Response:
    detail = views.run(reg, request.path_params["id"])
    if request.query_params.get("graph"):
        detail["graph"] = graph_svg(detail["structure"], detail["tasks"])
    return JSONResponse(detail)


@guarded("api")
def api_agents(request: Request, reg: Registry) -> Response:
    return JSONResponse({"agents": views.agents(reg)})


async def api_start_run(request: Request) -> Response:
    ui: UI = request.app.state.ui
    denied = _bearer_denied(ui, request)
    if denied:
        return denied
    try:
        body = await request.json()
    except ValueError:
        body = None
    parameters = (body or {}).get("parameters", {}) if isinstance(body, dict) else None
    if not isinstance(parameters, dict):
        return _failure(ui, request, "api", 400, 'expected JSON {"parameters": {...}}')

    idempotency = request.headers.get("idempotency-key")
    key = f"api:{request.path_params['name']}:{idempotency}" if idempotency else None

    def start(reg: Registry) -> Response:
        if key is not None and key in ui.submitted:  # a retried request: the run it started, not another
            return JSONResponse(views.run_summary(reg.get_run(ui.submitted[key])), status_code=200)
        try:
            run_id = _create_run(reg, request.path_params["name"], parameters)
        except ParameterError as exc:
            return _failure(ui, request, "api", 400, str(exc))
        if key is not None:
            ui.remember(key, run_id)
        return JSONResponse(views.run_summary(reg.get_run(run_id)), status_code=201)

    return with_registry(request, "api", start)


async def api_cancel(request: Request) -> Response:
    ui: UI = request.app.state.ui
    return _bearer_denied(ui, request) or _cancel(request, "api", request.path_params["id"])


def build(registry_url: str | None = None, token: str | None = None) -> Starlette:
    """The app over the registry at *registry_url* (default: ``GITFLOWS_REGISTRY``); *token* enables actions."""
    routes = [
        Route("/", flows_page), Route("/flows/{name}", flow_page),
        Route("/flows/{name}/versions/{version:int}", version_page),
        Route("/flows/{name}/runs", start_run_form, methods=["POST"]),
        Route("/runs", runs_page), Route("/runs/{id:int}", run_page),
        Route("/runs/{id:int}/cancel", cancel_run_form, methods=["POST"]),
        Route("/agents", agents_page),
        Route("/login", login_page, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"]),
        Route("/api/flows", api_flows), Route("/api/flows/{name}", api_flow),
        Route("/api/flows/{name}/versions/{version:int}", api_version),
        Route("/api/flows/{name}/runs", api_start_run, methods=["POST"]),
        Route("/api/runs", api_runs), Route("/api/runs/{id:int}", api_run),
        Route("/api/runs/{id:int}/cancel", api_cancel, methods=["POST"]),
        Route("/api/agents", api_agents),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.ui = UI(registry_url, token)
    return app


def _create_run(reg: Registry, name: str, parameters: dict[str, Any]) -> int:
    version = reg.get_version(name)
    check_against(version.structure, parameters, name)
    return reg.create_run(name, version.version, parameters).id


def _cancel(request: Request, kind: str, run_id: int) -> Response:
    def cancel(reg: Registry) -> Response:
        if not reg.cancel(run_id):
            state = reg.get_run(run_id).state
            return _failure(request.app.state.ui, request, kind, 409,
                            f"run {run_id} is {state}: only a scheduled run can be cancelled")
        if kind == "api":
            return JSONResponse(views.run_summary(reg.get_run(run_id)))
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    return with_registry(request, kind, cancel)


def _bearer_denied(ui: UI, request: Request) -> Response | None:
    """An API action without ``Authorization: Bearer <token>`` is refused: 401, or 403 on a read-only page; an
    address that sent too many wrong tokens (here or at /login) waits: 429."""
    if ui.token is None:
        return _failure(ui, request, "api", 403, "read-only: no token is configured")
    client = _client(request)
    wait = ui.throttled(client)
    if wait > 0:
        response = _failure(ui, request, "api", 429, f"too many wrong tokens from {client}; try again in {wait:.0f} s")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if ui.bearer_ok(request):
        return None
    if request.headers.get("authorization"):
        ui.failed_login(client)
    return _failure(ui, request, "api", 401, "send Authorization: Bearer <token>")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _form_denied(ui: UI, request: Request, csrf: str) -> Response | None:
    """A form action without a session, or without the session's CSRF token, is refused (403)."""
    if ui.token is None:
        return _failure(ui, request, "page", 403, "this page is read-only: no token is configured")
    nonce = ui.session(request)
    if nonce is None:
        return _failure(ui, request, "page", 403, "log in with the token first (/login)")
    expected = ui.csrf(nonce) or ""
    if not hmac.compare_digest(csrf.encode(), expected.encode()):
        return _failure(ui, request, "page", 403, "the form's CSRF token does not match this session; reload the "
                                                 "page and try again")
    return None


def _failure(ui: UI, request: Request, kind: str, status: int, message: str) -> Response:
    message = redact(message)
    if kind == "api":
        return JSONResponse({"error": message}, status_code=status)
    return ui.page(request, "error.html", status=status, status_code=status, message=message)
