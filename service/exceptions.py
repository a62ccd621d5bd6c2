"""What the service layer raises when it refuses or cannot do something.

Plain domain exceptions: no HTTP status lives here. The API (``service.errors``) and the
admin pages (``admin.views``) each map them to what their callers see, from one table
(``service.errors.STATUS``), so an operation refused means the same thing everywhere.

Each carries a stable machine ``code`` (``unknown_unit``), a Chinese ``message`` a user can
act on, and ``fields``: {field name: [messages]} naming what was wrong.
"""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        fields: dict | None = None,
        *,
        incident: str | None = None,
        retry_after: int | None = None,
        current_version: str | None = None,
    ):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or {}
        self.incident = incident  # an id in the server log, when something broke on our side
        self.retry_after = retry_after  # seconds, when trying again later may succeed
        self.current_version = current_version  # the version a conflicting writer should read


class Unauthenticated(ServiceError):
    """The caller is not signed in, or their credentials are not valid."""


class Forbidden(ServiceError):
    """The caller is known but may not do this (or may not know that it exists)."""


class NotFound(ServiceError):
    """What was asked for does not exist."""


class Conflict(ServiceError):
    """The request clashes with the current state (someone else wrote first, a duplicate)."""


class Closed(ServiceError):
    """A deadline has passed: the stage it closes takes no more writes (the message names it)."""


class PreconditionRequired(ServiceError):
    """Changing existing data needs the version the caller read (If-Match)."""


class Invalid(ServiceError):
    """The input is well-formed but wrong: the fields say what."""


class TooLarge(ServiceError):
    """What was sent is larger than the service keeps (an evidence file over the size limit)."""


class TooManyAttempts(ServiceError):
    """Too many tries in too short a time: wait ``retry_after`` seconds."""


class Unavailable(ServiceError):
    """A part of the service (the engine, the rules) cannot answer now: try again later."""


class Inconsistent(ServiceError):
    """Stored data does not agree with itself: an operator must look (logged with an incident)."""
