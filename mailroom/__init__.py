"""mailroom: email-first ticketing for professionals' online-safety helplines."""

__version__ = "0.1.0"
