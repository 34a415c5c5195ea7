"""Runtime: the App built at the top, the daemon, the scheduler and its jobs,
bulk ingest.
"""
