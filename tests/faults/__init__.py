"""Fault tests: mailroom killed, its database cut, its relay down, its input mangled.

Each module starts real processes (``mailroom ingest``, ``mailroom run``, an
MTA-like SMTP client) against SQLite and a real PostgreSQL, and checks the
promises of SPEC sections 4 and 5 after the fault: every message stored once,
every acknowledgement queued once, nothing acknowledged that is not stored.
"""
