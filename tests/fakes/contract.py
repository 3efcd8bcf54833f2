"""Holding a fake's JSON to the real service's own types, with nothing more and nothing less.

The services' SDKs and schema packages describe each response as pydantic models, but
leniently: GitHub's (githubkit) ignore unknown fields and Anthropic's keep them as
extras. A fake that served a field the service never sends would pass them. So
:func:`violations` validates first (a required field missing, or a wrong type, fails
there) and then walks the validated model beside the JSON, reporting every key the
model does not declare, at any depth.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError


def undeclared(model: Any, data: Any, where: str = "") -> list[str]:
    """JSON pointers of the keys in ``data`` that the validated ``model`` has no field for."""
    found: list[str] = []
    if isinstance(model, BaseModel) and isinstance(data, dict):
        by_key: dict[str, str] = {}
        for name, info in type(model).model_fields.items():
            by_key[name] = name
            if info.alias:
                by_key[info.alias] = name
        for key, value in data.items():
            name = by_key.get(key)
            if name is None:
                found.append(f"{where}/{key}")
            else:
                found += undeclared(getattr(model, name), value, f"{where}/{key}")
    elif isinstance(model, list) and isinstance(data, list):
        for i, (item, raw) in enumerate(zip(model, data, strict=False)):
            found += undeclared(item, raw, f"{where}/{i}")
    return found


def violations(schema: Any, data: Any) -> list[str]:
    """What is wrong with ``data`` as an instance of ``schema`` (a model or a type such as
    ``list[Model]``): validation errors, then keys the schema does not declare.

    Validated as JSON in strict mode, so ``"yes"`` is no boolean and ``"1"`` no number, as
    for a typed client; only what JSON has no type for (a date-time) is read from a string.
    """
    try:
        model = TypeAdapter(schema).validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        return [
            f"/{'/'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        ]
    return [f"{key}: not a field of the real service's type" for key in undeclared(model, data)]
