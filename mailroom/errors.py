"""The error tiers.

``MailError`` is caused by the message itself (unparseable, hostile): the
inbox row becomes ``bad`` and the sender's mail is kept for an admin.
``ConfigError`` is a bad setting: one line per problem, exit status 1.
``StoreUnavailable`` means the database cannot be reached right now: doors
answer with a temporary failure (SMTP 451, exit 75) so the mail is retried.
Anything else raised inside the pipeline is an internal error: ``shunt``.
"""

from __future__ import annotations


class MailroomError(Exception):
    """Base of the errors mailroom raises on purpose."""


class MailError(MailroomError):
    """The message cannot be processed because of its own content."""


class ConfigError(MailroomError):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StoreUnavailable(MailroomError):
    """The database cannot be reached; the caller should ask for a retry."""


class UsageError(MailroomError):
    """A command was called with arguments that cannot work (exit status 2)."""
