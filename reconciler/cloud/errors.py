"""Typed errors of the cloud client. Each carries the server's own message, never a secret.

`CloudApiError` is an answer from the server (status, service, message); `CloudResponseError` an answer
that could not be understood (HTML, truncated JSON, a missing field); `CloudTransportError` no answer
at all; `CloudTimeout` a wait that ran out. All derive from `ReconcilerError` (exit code 1).
"""

from __future__ import annotations

from reconciler.errors import ReconcilerError


class CloudError(ReconcilerError):
    """Any failure talking to the cloud."""


class CloudConfigError(CloudError):
    """Missing or unusable credentials or endpoints; nothing was sent."""


class CloudTransportError(CloudError):
    """The request got no answer (connection refused or dropped, read timeout)."""


class CloudTimeout(CloudError):
    """Waiting for an image or server status took longer than allowed."""


class CloudCancelled(CloudError):
    """The caller asked to stop (a cancelled apply): a wait or a stream ended early, on purpose."""


class CloudResponseError(CloudError):
    """The server answered with something the client cannot use (not JSON, truncated, fields missing)."""


class CloudApiError(CloudError):
    """The server refused or failed a request. `status`, `service` and the server's `server_message`."""

    def __init__(
        self,
        status: int,
        server_message: str,
        *,
        service: str,
        method: str,
        path: str,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.server_message = server_message
        self.service = service
        self.method = method
        self.path = path
        super().__init__(f"{service} {method} {path}: {status} {server_message}", hint=hint)


class NotFound(CloudApiError):
    """404: the object does not exist or is not visible to this project."""


class Unauthorized(CloudApiError):
    """401 even after re-authenticating: the credentials are not accepted."""


class Forbidden(CloudApiError):
    """403: the project may not do this (a protected image, a member's action, a read-only attribute)."""


class Conflict(CloudApiError):
    """409: the object is in the wrong state for this request, or the change already exists."""


class BadRequest(CloudApiError):
    """400: the request was malformed or refused by validation."""


class RateLimited(CloudApiError):
    """429 or 503 that outlasted the retries."""


def api_error_class(status: int) -> type[CloudApiError]:
    return {
        400: BadRequest,
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        409: Conflict,
        429: RateLimited,
        503: RateLimited,
    }.get(status, CloudApiError)
