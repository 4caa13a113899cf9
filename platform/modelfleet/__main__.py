"""``python -m modelfleet`` is the ``fleet`` command (for environments without the console script)."""

from modelfleet.cli.app import main

main()
