"""Shared types that every part imports: the run record, its events, settings and store.

Nothing in here imports ``bot``, ``jobs`` or ``sandboxes``; they all import it.
"""
