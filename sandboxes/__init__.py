"""The hands: one isolated container per run. Holds no secrets, imports nothing above it."""
