"""The ``agents`` command line: the entry point for every process role."""
