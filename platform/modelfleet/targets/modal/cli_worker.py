"""A long-lived ``modal`` CLI process that runs one command after another: the JSON commands' runner.

Why: every ``modal app history APP --json`` after a deploy started a Python process that
spent ~0.6 CPU-seconds importing the CLI (``bench/deploy_scale.py --breakdown``) for two
requests; after deploys moved into the fleet process that start-up was most of a deploy's
client CPU. The commands stay the CLI's own: this process imports ``modal``'s entry point
once and invokes it per request with the same arguments (``entrypoint_cli.main(args)``,
click's programmatic call), with output on (``modal.enable_output``, as modal/__main__.py
does) and captured per command -- one command at a time, so capturing ``sys.stdout`` is safe.

Protocol on stdin/stdout: one JSON array of arguments per line in, one JSON object
``{"rc", "stdout", "stderr"}`` per line out. EOF on stdin ends the process.
"""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import Any, TextIO


def run_command(args: list[str]) -> dict[str, Any]:
    """Run ``modal ARGS`` in this process; the exit code and what it printed."""
    import click
    from modal.cli.entry_point import entrypoint_cli
    from modal.output import enable_output

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err), enable_output():
        try:
            result = entrypoint_cli.main(args=args, prog_name="modal", standalone_mode=False)
            code = result if isinstance(result, int) else 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except click.exceptions.Exit as exit_:
            code = exit_.exit_code
        except click.ClickException as error:
            error.show(file=err)
            code = error.exit_code
        except click.Abort:
            code = 1
        except Exception as error:  # what modal/__main__.py prints for an error with a message
            print(f"Error: {error}" if str(error) else f"{type(error).__name__}", file=err)
            code = 1
    return {"rc": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def serve(requests: TextIO, replies: TextIO) -> None:
    """Answer each request line until EOF."""
    for line in requests:
        if not line.strip():
            continue
        reply = run_command([str(a) for a in json.loads(line)])
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    """Serve on stdin/stdout; anything else that writes to fd 1 lands on stderr, never in a reply."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
