"""Exceptions raised by irgov_policy.

Every exception the package raises derives from `IrgovError`; catching it catches them all. The
tree (classes defined outside this module are named with their module)::

    IrgovError
    ├── IRInputError          untrusted IR or DAG JSON refused by the strict input model
    ├── DigestError           a digest that is not `ALGO:HEX` of an allowed, known algorithm
    ├── HashBackendError      unknown hash backend or a backend registered twice
    ├── PluginError           a broken plugin: fails to load or in a hook, an unknown or mis-signed hook, a taken name
    ├── ConfigError           a configuration value that cannot be used
    ├── PolicyError           rule packs and policy tests
    │   ├── PackLoadError     a pack that cannot be loaded (carries file:line:col problems)
    │   │   └── BundleError   a pack bundle that is malformed, tampered with or not signed by a trusted key
    │   ├── PolicyTestLoadError  a policy test file that cannot be loaded (file:line:col problems)
    │   ├── CelCompileError   (policy.cel.base) a CEL expression that does not compile
    │   ├── CelEvalError      (policy.cel.base) a CEL expression that errored at run time
    │   ├── PrimitiveError    (policy.primitives) a declarative primitive that errored where CEL would
    │   └── CandidateError    (policy.candidate) a pack set refused by a reload stage
    ├── ApprovalError         approvals service
    │   ├── InvalidTTLError   a TTL that is not a positive number of seconds within bounds
    │   └── ApprovalKeyError  a missing or malformed server key
    ├── StoreError            a store URL or backend that cannot be used
    │   └── StoreTimeoutError a store that did not answer within `store_timeout` (locked, paused, overloaded)
    ├── EventError            events, outbox and sinks
    │   ├── DeliveryFailed    (events.relay) a sink refused an event or did not answer in time
    │   └── WebhookFailed     (events.sinks.webhook) a webhook answered with a status other than 2xx
    ├── GovernanceError       the kernel refused a request (approval requests, grants)
    │   ├── NotFoundError     no such approval request for this tenant
    │   ├── ConflictError     the request's state does not allow the change (already granted, revoked)
    │   │   └── IdempotencyConflictError  an idempotency key reused with another token, caller or IR
    │   ├── NotEscalatedError an approval asked for a decision that is not an escalation this kernel made
    │   ├── SeparationOfDutiesError  the approver submitted the IR or requested the approval
    │   ├── NotClaimantError  a principal who neither requested the approval nor submitted the IR claims its token
    │   └── RateLimitedError  too many failed consumes for a tenant or a principal: retry later
    └── ProblemError          (http.problems) an HTTP answer as a problem document (status, kind, detail)

`docs/errors.md` says what each means to a caller.

Messages follow one style: one lowercase sentence without a final period, user input in
backticks, a location (JSON pointer or file:line:col) whenever there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ApprovalError",
    "ApprovalKeyError",
    "BundleError",
    "ConfigError",
    "ConflictError",
    "DigestError",
    "EventError",
    "GovernanceError",
    "HashBackendError",
    "IRInputError",
    "IdempotencyConflictError",
    "InputProblem",
    "InvalidTTLError",
    "IrgovError",
    "NotClaimantError",
    "NotEscalatedError",
    "NotFoundError",
    "PackLoadError",
    "PluginError",
    "PolicyError",
    "PolicyTestLoadError",
    "RateLimitedError",
    "SeparationOfDutiesError",
    "SourceProblem",
    "StoreError",
    "StoreTimeoutError",
]


class IrgovError(Exception):
    """Base class of every error this package raises on purpose."""


@dataclass(frozen=True)
class InputProblem:
    """One problem in an input document, located by RFC 6901 JSON pointer."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class IRInputError(IrgovError):
    """The strict input model refused a document; `problems` names every JSON pointer."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid input")


class DigestError(IrgovError):
    """A digest string was refused by `parse_digest` or `verify_digest`."""


class HashBackendError(IrgovError):
    """An unknown hash algorithm was requested, or one was registered twice."""


class PluginError(IrgovError):
    """A plugin that cannot be used: it fails to load or raises in a hook, implements a hook that
    does not exist or with arguments the hook does not pass, or registers a name another plugin
    (or irgov_policy) has. The message is one line naming the plugin by its entry-point name."""


class ConfigError(IrgovError):
    """A configuration value cannot be used."""


class PolicyError(IrgovError):
    """Base of rule pack and policy test errors."""


@dataclass(frozen=True)
class SourceProblem:
    """One problem located in a source file, printed as `file:line:col: message`."""

    file: str
    line: int
    column: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PackLoadError(PolicyError):
    """A rule pack could not be loaded; `problems` locate each reason in its file."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "rule pack refused")


class BundleError(PackLoadError):
    """A pack bundle was refused: malformed, tampered with, unsigned or signed by no trusted key.
    The message is one line naming the bundle file."""

    def __init__(self, message: str, file: str = "") -> None:
        super().__init__([SourceProblem(file, 1, 1, message)])
        self.message = message

    def __str__(self) -> str:
        return self.message


class PolicyTestLoadError(PolicyError):
    """A policy test file (`*.irgov-test.yaml`) could not be loaded; `problems` locate each reason."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "policy test refused")


class ApprovalError(IrgovError):
    """Base of approvals service errors."""


class InvalidTTLError(ApprovalError):
    """A TTL that is not a positive finite number of seconds within the configured bound."""


class ApprovalKeyError(ApprovalError):
    """The server key used to digest approval tokens is missing or malformed."""


class StoreError(IrgovError):
    """A store URL or backend that cannot be used."""


class StoreTimeoutError(StoreError):
    """A store did not answer within its timeout (`store_timeout`): a SQLite database write-locked
    by another connection, a Redis server paused or overloaded, a PostgreSQL statement waiting on a
    lock. `store` names which store (`approval store`), `backend` its kind (`sqlite`, `redis`,
    `postgresql`), `seconds` the timeout. The call may have been applied or not: retry it (a
    consume retried with its idempotency key is answered with its first success)."""

    def __init__(self, message: str, *, store: str, backend: str, seconds: float) -> None:
        super().__init__(message)
        self.store = store
        self.backend = backend
        self.seconds = seconds


class EventError(IrgovError):
    """Events, outbox and sink configuration errors."""


class GovernanceError(IrgovError):
    """Base of the kernel's refusals."""


class NotFoundError(GovernanceError):
    """No approval request with this id exists for this tenant (the same answer either way)."""


class ConflictError(GovernanceError):
    """The approval request is in a state that does not allow the change."""


class IdempotencyConflictError(ConflictError):
    """A consume's idempotency key was used before, within the approval's retention, to consume
    another token, by another caller or for another IR: the retry is not the same consume, and it
    is refused (nothing written) instead of being answered with the other consume's success."""


class NotEscalatedError(GovernanceError):
    """An approval was asked for a decision that is not an ESCALATE this kernel made."""


class SeparationOfDutiesError(GovernanceError):
    """The approver is the principal who submitted the IR or requested the approval."""


class NotClaimantError(GovernanceError):
    """A principal other than the requester or a submitter of the IR claims a request's token."""


class RateLimitedError(GovernanceError):
    """Too many failed consumes (invalid, mismatched or spent tokens) for a tenant or a principal
    in the current window; `retry_after` is the number of seconds until the window ends."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
