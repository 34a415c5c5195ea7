"""The doors mail comes in through: SMTP, IMAP and files/stdin.

A door only stores the raw message (SPEC section 4, step 1) and returns; the
pipeline does everything else. Every door speaks the same contract to the
inbox (:mod:`mailroom.doors.contract`), and all of them are wired in one
place, :mod:`mailroom.runtime.doors`.
"""
