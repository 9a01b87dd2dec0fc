"""``Webhook``: flows sent to and fetched from HTTP endpoints you run."""

from __future__ import annotations

from typing import Any

from gitflows.blobs import BlobStore
from gitflows.blobs.webhook import WebhookStore
from gitflows.storage.blob import BlobStorage


class Webhook(BlobStorage):
    """``Webhook(build_request_kwargs, build_request_http_method, get_flow_request_kwargs,
    get_flow_request_http_method, stored_as_script=False, flow_script_path=None, **kwargs)``.

    Request arguments are those of ``requests.request`` and may use ``${VAR}`` / ``$VAR`` templates
    anywhere (environment variables, then secrets; ``$$`` for a literal ``$``; ``${GITFLOWS_KEY}`` is
    the flow's key). ``serialize()`` keeps the templates, never the filled values. The build
    responses are kept per flow name in ``build_responses``.
    """

    type_name = "Webhook"
    script_needs_key = False  # keys are generated; templates may use ${GITFLOWS_KEY}
    fields = ("build_request_kwargs", "build_request_http_method", "get_flow_request_kwargs",
              "get_flow_request_http_method", "flow_script_path")

    def __init__(self, build_request_kwargs: dict[str, Any], build_request_http_method: str,
                 get_flow_request_kwargs: dict[str, Any], get_flow_request_http_method: str,
                 stored_as_script: bool = False, flow_script_path: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("local_script_path", flow_script_path)
        super().__init__(stored_as_script=stored_as_script, **kwargs)
        self.build_request_kwargs, self.build_request_http_method = build_request_kwargs, build_request_http_method
        self.get_flow_request_kwargs, self.get_flow_request_http_method = (get_flow_request_kwargs,
                                                                           get_flow_request_http_method)
        self.flow_script_path = flow_script_path
        self.build_responses: dict[str, Any] = {}

    @property
    def given_key(self) -> str | None:
        return None  # keys are generated; templates may use ${GITFLOWS_KEY}

    def make_store(self) -> BlobStore:
        return WebhookStore(self.build_request_kwargs, self.build_request_http_method, self.get_flow_request_kwargs,
                            self.get_flow_request_http_method)

    def _after_upload(self, name: str, answer: object) -> None:
        self.build_responses[name] = answer
