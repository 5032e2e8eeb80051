"""What can go wrong when the bridge calls Dojo's REST API, as one exception tree.

::

    DojoApiError                 any failed call; ``status`` is the HTTP status or ``None``
    ├── AuthRejected             401/403: the API key (or its permissions) was refused
    ├── InvalidRequestError      400/422: Dojo refused what we sent (see ``field_errors``)
    ├── NotFoundError            404: no such terminal, session, payment intent
    ├── ConflictError            409: e.g. the payment intent cannot be reversed
    ├── ServerError              5xx: Dojo's side failed (retried on safe calls first)
    ├── NetworkError             no HTTP answer at all: timeout, DNS, refused connection
    └── UnexpectedResponseError  a 2xx whose body we could not read at all

    InsecureEndpointError (ValueError)   programming/configuration error, not a runtime failure:
                                         an ``http://`` base URL without ``allow_insecure``

Every message is safe to show and to log: the API key is removed with
:func:`epos_bridge.protocol.dojo.redact` before any error is built (contract §5.6 asks us
to log ``traceId``, so it is kept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from epos_bridge.protocol.dojo import redact


class InsecureEndpointError(ValueError):
    """The client was built with a plain-HTTP base URL and ``allow_insecure`` was not set."""


@dataclass(frozen=True)
class Problem:
    """The useful parts of an error body, whichever of the three shapes Dojo used (§5.6)."""

    title: str | None = None
    detail: str | None = None
    trace_id: str | None = None
    code: str | None = None
    type: str | None = None
    field_errors: dict[str, list[str]] = field(default_factory=dict)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    return str(value)


def _field_errors(raw: Any) -> dict[str, list[str]]:
    """``errors`` is ``{field: [str]}`` (Error), ``{field: any}`` or null (ProblemDetailsTerminals)."""
    if not isinstance(raw, dict):
        return {}
    result: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, list):
            result[str(key)] = [str(item) for item in value]
        elif value is not None:
            result[str(key)] = [str(value)]
    return result


def parse_problem(body: bytes | str) -> Problem:
    """Read an error body leniently: ``Error``, ``ProblemDetailsTerminals`` or ``ProblemDetails``.

    Any field may be missing or null; ``ProblemDetails`` has no ``traceId`` but may carry one
    in ``extensions``. A body that is not a JSON object gives an empty :class:`Problem`.
    """
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return Problem()
    if not isinstance(data, dict):
        return Problem()
    extensions = data.get("extensions")
    if not isinstance(extensions, dict):
        extensions = {}
    trace_id = data.get("traceId") or extensions.get("traceId") or data.get("traceid")
    code = data.get("code") or extensions.get("code")
    errors = data.get("errors") if data.get("errors") is not None else extensions.get("errors")
    return Problem(
        title=_text(data.get("title")),
        detail=_text(data.get("detail")),
        trace_id=_text(trace_id),
        code=_text(code),
        type=_text(data.get("type")),
        field_errors=_field_errors(errors),
    )


class DojoApiError(Exception):
    """A call to Dojo failed. ``str(error)`` is a sentence an installer or support can act on
    (with the call and Dojo's trace id); :attr:`staff_message` is the same news for a pop-up,
    without the request path or the trace id (those stay in the log)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        problem: Problem | None = None,
        staff_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.staff_message = staff_message or message
        self.status = status
        self.method = method
        self.path = path
        problem = problem or Problem()
        self.title = problem.title
        self.detail = problem.detail
        self.trace_id = problem.trace_id
        self.code = problem.code
        self.type = problem.type
        self.field_errors = problem.field_errors

    def __str__(self) -> str:
        return self.message


class AuthRejected(DojoApiError):
    """401 or 403. Retrying will not help until the key is fixed."""


class InvalidRequestError(DojoApiError):
    """400 or 422: Dojo understood the call and refused it (or it came too late, §6 E3)."""


class NotFoundError(DojoApiError):
    """404. For payment intents this may also mean ``Canceled`` (§5.4)."""


class ConflictError(DojoApiError):
    """409: the resource is in a state that forbids the call (e.g. reversal)."""


class ServerError(DojoApiError):
    """5xx: Dojo failed; safe calls were already retried with backoff."""


class NetworkError(DojoApiError):
    """No HTTP answer: timeout, DNS failure, connection refused or reset."""


class UnexpectedResponseError(DojoApiError):
    """A success status whose body was not JSON of a shape we can read."""


def _describe(problem: Problem) -> str:
    parts = [part for part in (problem.title, problem.detail) if part]
    text = ": ".join(dict.fromkeys(parts))  # title and detail are sometimes identical
    if problem.field_errors:
        fields = "; ".join(f"{name}: {', '.join(msgs)}" for name, msgs in sorted(problem.field_errors.items()))
        text = f"{text} ({fields})" if text else fields
    return text


def error_for_status(
    status: int,
    problem: Problem,
    *,
    method: str,
    path: str,
    secrets: tuple[str | None, ...] = (),
) -> DojoApiError:
    """Turn an HTTP error status and its parsed body into the matching exception.

    ``secrets`` are removed from every text that ends up in the exception.
    """

    def clean(text: str | None) -> str | None:
        return redact(text, *secrets) if text is not None else None

    problem = Problem(
        title=clean(problem.title),
        detail=clean(problem.detail),
        trace_id=clean(problem.trace_id),
        code=clean(problem.code),
        type=clean(problem.type),
        field_errors={redact(k, *secrets): [redact(m, *secrets) for m in v] for k, v in problem.field_errors.items()},
    )
    said = _describe(problem)
    suffix = f" Dojo said: {said}." if said else ""
    trace = f" (trace id {problem.trace_id})" if problem.trace_id else ""
    call = f"{method} {path}"
    kind: type[DojoApiError]
    # Each case once, as (the full message with the call, the staff sentence without it).
    if status in (401, 403):
        kind = AuthRejected
        message = staff = f"The API key was rejected by Dojo ({status}). Check it in Settings → API key."
    elif status in (400, 422):
        kind = InvalidRequestError
        message, staff = f"Dojo refused the request {call} ({status}).{suffix}", f"Dojo refused the request.{suffix}"
    elif status == 404:
        kind = NotFoundError
        message = f"Dojo could not find what {call} asked for (404).{suffix}"
        staff = f"Dojo could not find it.{suffix}"
    elif status == 409:
        kind = ConflictError
        message = f"Dojo refused {call} because of the current state (409).{suffix}"
        staff = f"Dojo refused it because of the current state.{suffix}"
    elif status >= 500:
        kind = ServerError
        message = f"Dojo had a problem answering {call} ({status}).{suffix} Try again in a minute."
        staff = f"Dojo had a problem answering.{suffix} Try again in a minute."
    else:
        kind = DojoApiError
        message, staff = f"Dojo answered {call} with HTTP {status}.{suffix}", f"Dojo answered with an error.{suffix}"
    return kind(
        redact(message + trace, *secrets),
        status=status,
        method=method,
        path=path,
        problem=problem,
        staff_message=redact(staff, *secrets),
    )
