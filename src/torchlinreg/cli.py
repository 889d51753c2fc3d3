"""The `torchlinreg` command: a thin face over the library.

Library exceptions become one line on stderr and an exit code here, in one place:
2 for bad usage or data, 1 for other failures, 130 for Ctrl-C. ``--debug`` (or
TORCHLINREG_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from . import __version__
from .cli_demo import demo
from .cli_train import train
from .cli_use import evaluate, predict, summary
from .errors import DataError, ModelFileError, TorchLinRegError

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="torchlinreg")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def cli(debug: bool) -> None:
    """Linear regression on PyTorch: exact and iterative fits on your own files."""


for command in (demo, train, predict, evaluate, summary):
    cli.add_command(command)


def _fail(message: str, code: int) -> int:
    click.echo(f"torchlinreg: error: {message}", err=True)
    return code


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"torchlinreg: warning: {message}", err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by tests and ``main``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("TORCHLINREG_DEBUG") == "1"
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _one_line_warning
        return _run(args, debug)


def _run(args: list[str], debug: bool) -> int:
    try:
        result = cli.main(args=args, prog_name="torchlinreg", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return EXIT_USAGE
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("torchlinreg: interrupted", err=True)
        return EXIT_INTERRUPTED
    except (DataError, ModelFileError) as e:
        if debug:
            raise
        return _fail(str(e), EXIT_USAGE)
    except TorchLinRegError as e:
        if debug:
            raise
        return _fail(str(e), EXIT_FAILURE)
    except OSError as e:
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        return _fail(f"{where}{e.strerror or e}", EXIT_FAILURE)


def main() -> None:
    sys.exit(run())
