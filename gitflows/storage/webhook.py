"""``Webhook``: flows sent to and fetched from HTTP endpoints you run."""

from __future__ import annotations

import os
import warnings
from typing import Any

from gitflows.blobs import BlobStore
from gitflows.blobs.webhook import KEY_VARIABLE, WebhookStore, check_method, uses_variable
from gitflows.errors import ConfigurationRuntimeError
from gitflows.flow import Flow
from gitflows.storage.blob import BlobStorage

DATA_WARNING = ("'data' found in build_request_kwargs. This value is overwritten with the flow content and should "
                "not be set directly")


class Webhook(BlobStorage):
    """``Webhook(build_request_kwargs, build_request_http_method, get_flow_request_kwargs,
    get_flow_request_http_method, stored_as_script=False, flow_script_path=None, **kwargs)``.

    HTTP methods are Prefect 1's: GET, PATCH, POST, PUT (anything else is a ``RuntimeError`` here).
    Request arguments are those of ``requests.request``; their string values may use ``${VAR}`` /
    ``$VAR`` templates (environment variables, then secrets; ``$$`` for a literal ``$``), as Prefect 1.
    ``serialize()`` keeps the templates, never the filled values.

    As in Prefect 1, a storage holds one flow and ``add_flow`` replaces it — unless the build request
    uses ``${GITFLOWS_KEY}`` (each flow's own key), which lets one storage hold several flows.
    ``stored_as_script=True`` sends ``flow_script_path`` (required, checked at ``add_flow``).
    Build responses are kept per flow name: ``_build_responses`` (the ``requests.Response``, as Prefect
    1) and ``build_responses`` (its JSON, or status and text).
    """

    type_name = "Webhook"
    script_needs_key = False  # keys are generated; templates may use ${GITFLOWS_KEY}
    fields = ("build_request_kwargs", "build_request_http_method", "get_flow_request_kwargs",
              "get_flow_request_http_method", "flow_script_path")

    def __init__(self, build_request_kwargs: dict[str, Any], build_request_http_method: str,
                 get_flow_request_kwargs: dict[str, Any], get_flow_request_http_method: str,
                 stored_as_script: bool = False, flow_script_path: str | None = None, **kwargs: Any) -> None:
        for method, argument in ((build_request_http_method, "build_request_http_method"),
                                 (get_flow_request_http_method, "get_flow_request_http_method")):
            try:
                check_method(method, argument)
            except ConfigurationRuntimeError as exc:
                self.logger.critical("%s", exc)
                raise
        flow_script_path = flow_script_path or kwargs.pop("local_script_path", None)
        super().__init__(stored_as_script=stored_as_script, local_script_path=flow_script_path, **kwargs)
        self.build_request_kwargs, self.build_request_http_method = build_request_kwargs, build_request_http_method
        self.get_flow_request_kwargs, self.get_flow_request_http_method = (get_flow_request_kwargs,
                                                                           get_flow_request_http_method)
        self.flow_script_path = flow_script_path
        self.build_responses: dict[str, Any] = {}
        self._build_responses: dict[str, Any] | None = None

    @property
    def given_key(self) -> str | None:
        return None  # keys are generated; templates may use ${GITFLOWS_KEY}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a flow whose ``storage`` is this one is pickled with it): without the build responses, whose
        URLs hold filled templates."""
        state = self.__dict__.copy()
        state["_build_responses"], state["build_responses"] = None, {}
        return state

    @property
    def script_to_upload(self) -> str | None:
        """``flow_script_path`` (read at ``build()``, so setting the attribute later works as in Prefect)."""
        return self.flow_script_path

    @property
    def holds_several_flows(self) -> bool:
        """Whether the build request sends each flow to its own place (``${GITFLOWS_KEY}``)."""
        return uses_variable(self.build_request_kwargs, KEY_VARIABLE)

    def add_flow(self, flow: Flow) -> str:
        """Record *flow*; return its key. Without ``${GITFLOWS_KEY}`` in the build request, the flow replaces any
        flow added before (Prefect 1: one flow per Webhook storage)."""
        if isinstance(flow, Flow) and self.flows and not self.holds_several_flows:
            self.logger.info("Webhook storage holds one flow: %s replaces %s (use ${%s} in build_request_kwargs "
                             "to store several)", repr(flow.name), ", ".join(map(repr, self.flows)), KEY_VARIABLE)
            self.flows, self._flows, self.digests = {}, {}, {}
        return super().add_flow(flow)

    def _location_for(self, flow: Flow) -> str:
        if self.stored_as_script:
            self._check_script(repr(flow.name))
        return super()._location_for(flow)

    def _check_script(self, names: str) -> None:
        """Prefect 1's checks of ``flow_script_path`` (made at ``build()`` there, at ``add_flow`` here)."""
        problem = None
        if not self.flow_script_path:
            problem = "flow_script_path must be provided if stored_as_script=True"
        elif not os.path.isfile(self.flow_script_path):
            problem = f"file '{self.flow_script_path}' passed to flow_script_path does not exist"
        if problem:
            message = (f"Webhook storage for flow {names}: {problem} (flow_script_path= the local .py file that "
                       "defines the flow; its bytes are the build request's body)")
            self.logger.critical("%s", message)
            raise ConfigurationRuntimeError(message)

    def _no_script_to_upload(self) -> None:
        """Script mode and no ``flow_script_path`` at ``build()``: nothing to send when no flow was added (as
        Prefect 1), else Prefect's ``RuntimeError``."""
        if self._flows:
            self._check_script(", ".join(map(repr, self._flows)))

    def make_store(self) -> BlobStore:
        return WebhookStore(self.build_request_kwargs, self.build_request_http_method, self.get_flow_request_kwargs,
                            self.get_flow_request_http_method)

    def build(self) -> Webhook:
        """Send every added flow with the build request; keep the responses per flow name."""
        if self._flows and isinstance(self.build_request_kwargs, dict) and "data" in self.build_request_kwargs:
            self.logger.warning(DATA_WARNING)
            warnings.warn(DATA_WARNING, RuntimeWarning, stacklevel=2)
        self._build_responses = {}
        super().build()
        return self

    def _after_upload(self, name: str, answer: object) -> None:
        if self._build_responses is None:
            self._build_responses = {}
        self._build_responses[name] = answer
        try:
            self.build_responses[name] = answer.json()  # type: ignore[attr-defined]
        except ValueError:
            self.build_responses[name] = {"status_code": getattr(answer, "status_code", None),
                                          "text": getattr(answer, "text", "")[:1000]}
