"""One exception tree for EntryExit.

Third-party errors are wrapped where they enter (``raise X from exc``) and translated once at
each edge: the API maps them to RFC 9457 problem details, the CLI to a one-line message and a
non-zero exit status.

::

    EntryExitError
    ├── ConfigurationError            settings missing or unsafe
    │   └── ModelUnavailableError     a face model is missing, tampered or unloadable
    ├── ModelInstallError             obtaining or unpacking the model wheel failed
    ├── BiometricError
    │   ├── ImageDecodeError          bytes are not a usable JPEG/PNG image        (422)
    │   │   └── ImageTooLargeError    too many bytes or pixels                     (413)
    │   ├── NoFaceError               no face found in a decodable image           (422)
    │   └── IncompatibleTemplatesError templates of different models compared
    ├── DatasetError                  an evaluation data set or pairs file is malformed
    ├── InvalidInputError             a request or file is well-formed but invalid  (422)
    │   └── InvalidCursorError        a page cursor this service did not hand out  (400)
    ├── NotFoundError                 the resource does not exist                  (404)
    ├── ConflictError                 the resource is not in the needed state      (409)
    │   └── TransactionConflictError  another writer won a race; the use case reruns
    ├── StorageUnavailableError       the database cannot write now                 (503)
    ├── WorkerUnavailableError        a worker process is busy, died or timed out   (503)
    ├── AuditLogUntrustedError        the audit log's head does not verify          (503)
    ├── AuthenticationError           no or unknown credentials                    (401)
    ├── PermissionDeniedError         credentials lack the role                    (403)
    └── RateLimitedError              too many requests or failed sign-ins         (429)
"""

from __future__ import annotations


class EntryExitError(Exception):
    """Base of every error EntryExit raises on purpose.

    ``code`` is a stable, machine-readable slug used in problem-details ``type`` URIs and
    in CLI messages; messages never contain biometric or personal data.
    """

    code = "entryexit-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(EntryExitError):
    code = "configuration"


class ModelUnavailableError(ConfigurationError):
    code = "model-unavailable"


class ModelInstallError(EntryExitError):
    code = "model-install"


class BiometricError(EntryExitError):
    code = "biometric"


class ImageDecodeError(BiometricError):
    code = "image-undecodable"


class ImageTooLargeError(ImageDecodeError):
    code = "image-too-large"


class NoFaceError(BiometricError):
    code = "no-face"


class IncompatibleTemplatesError(BiometricError):
    code = "incompatible-templates"


class DatasetError(EntryExitError):
    code = "dataset"


class InvalidInputError(EntryExitError):
    code = "invalid-input"


class InvalidCursorError(InvalidInputError):
    """A page cursor (``after``) that is not well formed (a cursor is a position, not a
    credential: it is not signed, and whoever may read the list may start anywhere)."""

    code = "invalid-cursor"


class NotFoundError(EntryExitError):
    code = "not-found"


class ConflictError(EntryExitError):
    code = "conflict"


class IdempotencyKeyReusedError(ConflictError):
    """An ``Idempotency-Key`` already stands for a different request."""

    code = "idempotency-key-reused"


class TransactionConflictError(ConflictError):
    """Another writer changed a row this transaction depends on; running it again succeeds."""

    code = "transaction-conflict"


class StorageUnavailableError(EntryExitError):
    """The database refused to write (read-only, full, unreachable, busy past its timeout):
    nothing was stored, and the client may retry once storage recovers."""

    code = "storage-unavailable"


class WorkerUnavailableError(EntryExitError):
    """A worker process (a manifest worker) could not take the work now: all busy, stopped
    or out of time. Nothing was changed; ``retry_after`` says when to send it again."""

    code = "worker-unavailable"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[WorkerUnavailableError], tuple[str, float]]:
        return type(self), (self.message, self.retry_after)


class AuditLogUntrustedError(EntryExitError):
    """The audit log's head does not fit its last event (someone wrote to the database
    without the audit key): audited actions are refused until the log is repaired."""

    code = "audit-log-untrusted"


class StoredDataUntrustedError(EntryExitError):
    """A stored row that governs decisions (a policy version) fails its MAC or its content
    hash: someone wrote it without the keys. Nothing is decided on it until an administrator
    reloads the policy file."""

    code = "stored-data-untrusted"


class AuthenticationError(EntryExitError):
    code = "unauthenticated"


class PermissionDeniedError(EntryExitError):
    code = "forbidden"


class RateLimitedError(EntryExitError):
    code = "rate-limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# How the edges (API problem details, console pages) report each kind of error over HTTP.
_HTTP_STATUS: list[tuple[type[EntryExitError], int, str]] = [
    (ImageTooLargeError, 413, "Payload too large"),
    (ImageDecodeError, 422, "Undecodable image"),
    (BiometricError, 422, "Unusable image"),
    (InvalidCursorError, 400, "Bad request"),
    (InvalidInputError, 422, "Invalid input"),
    (NotFoundError, 404, "Not found"),
    (ConflictError, 409, "Conflict"),
    (AuthenticationError, 401, "Unauthenticated"),
    (PermissionDeniedError, 403, "Forbidden"),
    (RateLimitedError, 429, "Too many requests"),
    (ConfigurationError, 503, "Service not ready"),
    (AuditLogUntrustedError, 503, "Audit log untrusted"),
    (StoredDataUntrustedError, 503, "Stored data untrusted"),
    (StorageUnavailableError, 503, "Storage unavailable"),
    (WorkerUnavailableError, 503, "Service busy"),
]


def http_status(exc: EntryExitError) -> tuple[int, str] | None:
    """The HTTP status and title for ``exc``; None for an error no edge should expose."""
    for kind, status, title in _HTTP_STATUS:
        if isinstance(exc, kind):
            return status, title
    return None
