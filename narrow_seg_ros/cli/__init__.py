"""The ``narrow-seg`` command line: one entry point, one module per subcommand."""
