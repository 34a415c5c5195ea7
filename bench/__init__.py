"""``make bench``: the quality bars of SPEC section 12, measured in one run.

``python -m bench.run`` generates corpora of realistic helpline mail, measures
parsing, ingesting (SQLite and PostgreSQL), the cost of ingesting as history
grows, the SMTP door under 20 concurrent clients and peak memory, then prints
one table and writes it to ``bench/results/latest.json``.
"""
