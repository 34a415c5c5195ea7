"""Outgoing mail: render a template, compose a message, hand it to a transport.

- ``render``: Jinja2 templates in ``templates/`` → (text, html) bodies.
- ``compose``: bodies + thread headers → a safe ``EmailMessage`` (pure).
- ``transports``: file or SMTP delivery, with temporary/permanent failures.
"""
