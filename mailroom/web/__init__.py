"""The staff console: a server-rendered web interface to the cases (docs/console.md)."""
