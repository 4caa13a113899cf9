"""The ``fleet`` command line: typer commands that call the platform, never business logic."""
