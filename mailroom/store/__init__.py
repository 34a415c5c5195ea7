"""Persistence: the data model, the engine, and the blob store."""
