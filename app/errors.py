"""The one error type for user-facing errors.

Services raise ``UserError`` for anything the user can fix; mutations turn it into
``userErrors { field message code }``. Anything else is an internal error: logged with the request id,
never shown to clients.
"""

from __future__ import annotations


class UserError(Exception):
    def __init__(self, code: str, message: str, field: list[str] | str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = [field] if isinstance(field, str) else field

    @property
    def extensions(self) -> dict:
        """Picked up by graphql-core when a query (not a mutation) lets the error escape."""
        return {"code": self.code, "field": self.field}


class NotFound(UserError):
    """The object does not exist *for this tenant* (another tenant's id is simply not found)."""

    def __init__(self, what: str = "object", field: list[str] | str | None = "id"):
        super().__init__("NOT_FOUND", f"{what} not found", field)
