"""CI job definitions rendered from the catalog: the templates in ci/templates/ become .github/workflows/.

The jobs hold no logic of their own: every step calls a ``fleet`` command, so what CI
does can be run, read and tested on a laptop.
"""
