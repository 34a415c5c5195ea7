"""The doors mail comes in through: SMTP, IMAP and files/stdin.

A door only stores the raw message (SPEC section 4, step 1) and returns; the
pipeline does everything else.
"""
