"""What a subcommand needs to work: the configuration, the App, who acts.

:func:`open_app` builds the App from the configuration (``--config`` or
``MAILROOM_CONFIG``) at the top, checks the schema is current, and closes it
when the command ends.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
from collections.abc import Iterator

from sqlalchemy import Engine

from mailroom.app import App
from mailroom.errors import MailroomError
from mailroom.runtime.wiring import build_app
from mailroom.settings import Settings, load_settings
from mailroom.store.db import unavailable_as_store_error
from mailroom.store.schema import current_revision, head_revision


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


@contextlib.contextmanager
def open_app(args: argparse.Namespace, *, check_schema: bool = True) -> Iterator[App]:
    app = build_app(settings_from(args))
    try:
        if check_schema:
            ensure_schema(app.engine)
        yield app
    finally:
        app.close()


def ensure_schema(engine: Engine) -> None:
    with unavailable_as_store_error():
        current = current_revision(engine)
    if current != head_revision():
        raise MailroomError(
            "the database schema is not up to date: run `mailroom db upgrade`"
            f" (database at {current or 'empty'}, code at {head_revision()})"
        )


def cli_actor() -> str:
    """Who an audit event says acted from the command line: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
