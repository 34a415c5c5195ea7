"""Cases: tickets, their people and their mail.

Practitioners' commands by email, escalations to platforms, safeguarding.
"""
