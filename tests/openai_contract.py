"""Where a body the server sends is checked against OpenAI's published OpenAPI document: ``Contract``.

The document (tests/contract/openapi.json, pinned; its source and license beside it) is the one
OpenAI's SDKs are generated from: the contract, not SGLang's protocol models. It is OpenAPI 3.1 but
still marks 111 schemas ``nullable: true``; those become ``anyOf [schema, null]`` before jsonschema
(Draft 2020-12, with a ``referencing`` registry for its ``#/components/schemas/...`` references) reads
it. Response schemas allow extra fields, so what is checked is every field the spec types: its type,
its enum, and what it requires.

``ALLOWED`` lists the places where OpenAI's own API departs from its document, each with its reason;
nothing else is forgiven.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parent / "contract" / "openapi.json"
BASE = "urn:openai-openapi"


@dataclass(frozen=True)
class Departure:
    schema: str  # the response schema checked
    path: str  # a regex over the failing field's JSON path, e.g. choices/0/finish_reason
    value: Any  # the value OpenAI's own API sends there
    reason: str


ALLOWED = (
    Departure(
        "CreateCompletionResponse",
        r"choices/\d+/finish_reason",
        None,
        "The document gives plain and streamed completions one schema, whose finish_reason is never "
        "null; OpenAI's own stream sends null in every chunk but the last (and the SDK types it Optional).",
    ),
)


def _without_nullable(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema: ``anyOf [the schema, {"type": "null"}]``."""
    if isinstance(node, list):
        return [_without_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _without_nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        description = converted.pop("description", None)
        wrapped: dict[str, Any] = {"anyOf": [converted, {"type": "null"}]}
        if description is not None:
            wrapped["description"] = description
        return wrapped
    return converted


@functools.cache
def _document() -> dict[str, Any]:
    return _without_nullable(json.loads(SPEC.read_text()))


class Contract:
    def __init__(self) -> None:
        document = _document()
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry = Registry().with_resource(BASE, resource)
        self._event_schemas = self._responses_events()

    @functools.cache  # noqa: B019 - one Contract per session
    def _validator(self, name: str) -> Draft202012Validator:
        if name not in self.schemas:
            raise KeyError(f"no schema {name!r} in the document")
        return Draft202012Validator({"$ref": f"{BASE}#/components/schemas/{name}"}, registry=self._registry)

    def _responses_events(self) -> dict[str, str]:
        """Each Responses stream event's ``type`` -> its schema (ResponseStreamEvent is an anyOf of them)."""
        by_type = {}
        for branch in self.schemas["ResponseStreamEvent"]["anyOf"]:
            name = branch["$ref"].rsplit("/", 1)[-1]
            kind = self.schemas[name].get("properties", {}).get("type", {})
            for value in kind.get("enum", ()):
                by_type[value] = name
        return by_type

    def event_schema(self, event: dict[str, Any]) -> str:
        """The schema of one Responses stream event, by its type."""
        return self._event_schemas.get(str(event.get("type")), "ResponseStreamEvent")

    def violations(self, schema: str, body: Any, where: str = "") -> list[str]:
        """Every way ``body`` departs from ``schema``, as ``where: schema at path: message``, less ALLOWED."""
        found = []
        for error in self._validator(schema).iter_errors(body):
            for leaf in _leaves(error):
                path = "/".join(str(part) for part in leaf.absolute_path)
                if _allowed(schema, path, leaf):
                    continue
                found.append(f"{where}: {schema} at {path or '(root)'}: {leaf.message[:200]}")
        return found


def _leaves(error: Any) -> list[Any]:
    """What failed, most precisely: an anyOf that failed is reported by what failed in the branch of
    the instance's own type (``{"type": "null"}`` says nothing about an object that is wrong inside)."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    of_its_type = [
        errors
        for errors in branches.values()
        if not any(sub.validator == "type" and not sub.relative_path for sub in errors)
    ]
    if not of_its_type:
        return [best_match(error.context)]
    return [leaf for sub in of_its_type[0] for leaf in _leaves(sub)]


def _allowed(schema: str, path: str, error: Any) -> bool:
    return any(
        entry.schema == schema and re.fullmatch(entry.path, path) and error.instance == entry.value for entry in ALLOWED
    )


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """The events of an SSE body: (the ``event:`` name or None, the parsed ``data:``), [DONE] as a str."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        if data:
            payload = "\n".join(data)
            events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
    return events
