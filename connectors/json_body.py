"""Decoding request bodies as JSON with a bounded depth, for every HTTP edge.

The standard library's parser recurses in C and raises `RecursionError` somewhere near the
interpreter's recursion limit, which depends on how deep the stack already is; that escaped
as a 500. pydantic-core's parser stops at a fixed depth (`MAX_JSON_DEPTH`) without using the
interpreter's stack, and refuses what JSON does not allow (NaN, invalid UTF-8, lone surrogates).
"""

from __future__ import annotations

from typing import Any

import pydantic_core

from schemas.limits import MAX_JSON_DEPTH

__all__ = ["BodyNotJsonError", "decode_json"]


class BodyNotJsonError(ValueError):
    """A body that is not JSON (`reason` invalid_json) or nests too deep (`reason` too_deep)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode_json(body: bytes) -> Any:
    """The body as Python values; BodyNotJsonError with the reason when it cannot be."""
    try:
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        if "recursion limit exceeded" in str(exc):
            raise BodyNotJsonError(
                "too_deep", f"the body is nested more than {MAX_JSON_DEPTH} levels deep"
            ) from exc
        raise BodyNotJsonError("invalid_json", f"the body is not JSON: {exc}") from exc
