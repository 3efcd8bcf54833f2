"""The blueprint's steps, one module each. Every step is a function
``(ctx, session) -> None`` that checkpoints its results on the run record."""
