"""Where /openapi.json gets the request bodies of /v1/chat/completions and /v1/completions.

They are SGLang's own request models with this server's bounds (request_bounds.RULES) written in:
numeric ranges from the table, refused fields left out. So /docs shows what the server accepts and
a schema-driven client or fuzzer generates requests the server takes. The schema needs SGLang's
models, so it is filled in once the engine is ready; before that the routes show a plain object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sglang_hathora.openai.request_bounds import UNPUBLISHED, Limits, Rule

REF = "#/components/schemas/{model}"


def request_schema(model: Any, rules: dict[str, Rule], limits: Limits) -> tuple[dict, dict]:
    """(the model's schema with our bounds, its component definitions)."""
    schema = model.model_json_schema(ref_template=REF)
    definitions = schema.pop("$defs", {})
    properties: dict[str, Any] = schema["properties"]
    for name in list(properties):
        rule = rules.get(name)
        extra = rule.schema(limits) if rule is not None else None
        if extra is None or name in UNPUBLISHED:
            del properties[name]
            continue
        _merge(properties[name], extra)
    schema["required"] = [name for name in schema.get("required", []) if name in properties]
    return schema, _reachable(schema, definitions)


def _reachable(schema: dict, definitions: dict) -> dict:
    """Only the definitions the published schema still refers to (refused fields took some away)."""
    seen: dict[str, Any] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and (name := ref.rsplit("/", 1)[-1]) in definitions and name not in seen:
                seen[name] = definitions[name]
                pending.append(definitions[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return seen


_KEYS_BY_TYPE = {
    "integer": ("minimum", "maximum", "exclusiveMinimum", "const"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "const"),
    "string": ("minLength", "maxLength", "pattern", "enum"),
    "array": ("minItems", "maxItems"),
    "object": ("maxProperties", "propertyNames"),
}


def _merge(prop: dict[str, Any], extra: dict[str, Any]) -> None:
    """Write ``extra``'s keywords into the branches of ``prop`` whose type they apply to."""
    if "refs" in extra:  # keep only these alternatives of a union (and null)
        prop["anyOf"] = [
            branch
            for branch in prop.get("anyOf", [])
            if branch.get("type") == "null" or branch.get("$ref", "").rsplit("/", 1)[-1] in extra["refs"]
        ]
    # Optional fields are anyOf [T, null]: the bounds go on the non-null branches of the right type.
    branches = [branch for branch in prop.get("anyOf", []) if branch.get("type") != "null"] or [prop]
    for branch in branches:
        kind = branch.get("type")
        for key, value in extra.items():
            if key in _KEYS_BY_TYPE.get(kind, ()):
                branch[key] = value
            elif key == "items" and kind == "array" and isinstance(branch.get("items"), dict):
                _merge(branch["items"], value)
            elif key == "additionalProperties" and kind == "object" and isinstance(branch.get(key), dict):
                _merge(branch[key], value)


Bodies = dict[str, tuple[str, dict, dict]]  # path -> (schema name, schema, definitions)


def install_openapi(app: FastAPI, get_bodies: Callable[[], Bodies | None]) -> None:
    """Serve /openapi.json with the request bodies ``get_bodies`` gives once the engine is ready."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        bodies = get_bodies()
        if not bodies:
            return document  # not cached: the real bodies come once the engine is ready
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for path, (name, schema, definitions) in bodies.items():
            components.update(definitions)
            components[name] = schema
            document["paths"][path]["post"]["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF.format(model=name)}}},
            }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
