"""The ``mailroom`` command line (SPEC section 3)."""
