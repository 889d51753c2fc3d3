"""The `torchlinreg` command: a thin face over the library.

Library exceptions become one line on stderr and an exit code here, in one place:
2 for bad usage or data, 1 for other failures, 130 for Ctrl-C, 143 for SIGTERM and 129 for
SIGHUP (NOTE [signals] in ``interrupts.py``). The line has its control characters escaped
(NOTE [text from files] in ``output.py``) and is cut at 2,000 characters. Under a launcher,
rank 0 alone prints. ``--debug`` (or TORCHLINREG_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from .. import __version__
from ..errors import DataError, ModelFileError, TorchLinRegError
from .commands import COMMANDS
from .interrupts import (
    exit_code,
    ignore_signals,
    launched_world,
    received,
    signals_as_interrupts,
    speaks,
    what_happened,
)
from .text import safe

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="torchlinreg")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def cli(debug: bool) -> None:
    """Linear regression on PyTorch: exact and iterative fits on your own files."""


for command in COMMANDS:
    cli.add_command(command)


MAX_LINE = 2000  # characters of an error or warning line


def _fail(message: str, code: int) -> int:
    if speaks():
        click.echo(f"torchlinreg: error: {message}", err=True)
    return code


def _one_line(text: object) -> str:
    """One line, control characters escaped, at most MAX_LINE characters."""
    line = safe(" ".join(str(text).split()))
    if len(line) > MAX_LINE:
        line = f"{line[: MAX_LINE - 40]} ... ({len(line) - MAX_LINE + 40:,} characters more)"
    return line


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"torchlinreg: warning: {_one_line(message)}", err=True)


def _cli_warnings() -> None:
    """Show each warning once, as one line; the caller's filters (``-W error``, pytest's)
    must not turn a warning into a crash of the tool. Under a launcher, rank 0 alone warns
    (every rank would say the same)."""
    warnings.resetwarnings()
    warnings.simplefilter("default" if launched_world()[0] == 0 else "ignore")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.showwarning = _one_line_warning


def run(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Run the CLI and return its exit code (used by tests and ``main``); ``exiting``: the
    process ends after it (``main``), so a signal it handled leaves signals ignored.

    Example:
        >>> run(["summary", "model.safetensors", "--json"])  # doctest: +SKIP
        0
    """
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("TORCHLINREG_DEBUG") == "1"
    with warnings.catch_warnings(), signals_as_interrupts(exiting):
        if not debug:
            _cli_warnings()
        return _run(args, debug)


def _usage_error(e: click.ClickException) -> int:
    # click prints usage errors over several lines; one line, with where to look, is enough.
    if type(e).__name__ == "NoArgsIsHelpError":  # bare `torchlinreg`: the help is the answer
        click.echo(e.format_message(), err=True)
        return EXIT_USAGE
    ctx = getattr(e, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return _fail(f"{_one_line(e.format_message())}{where}", EXIT_USAGE)


def _run(args: list[str], debug: bool) -> int:
    try:
        # Not cli.main: it prints a blank line on Ctrl-C and exits the process on a closed pipe.
        with cli.make_context("torchlinreg", args) as ctx:
            ctx.meta["torchlinreg.argv"] = list(args)  # `train --nproc` starts its workers with it
            result = cli.invoke(ctx)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except BrokenPipeError:  # the reader went away (``... | head``): stop quietly
        _silence_stdout()
        return EXIT_FAILURE
    except click.ClickException as e:
        return _usage_error(e)
    except click.exceptions.Abort:
        if speaks(KeyboardInterrupt()):
            click.echo("torchlinreg: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP (NOTE [signals])
        return _interrupted(e)
    except (DataError, ModelFileError) as e:
        if debug:
            raise
        return _fail(_one_line(e), EXIT_USAGE)
    except TorchLinRegError as e:
        if debug:
            raise
        return _fail(_one_line(e), EXIT_FAILURE)
    except OSError as e:
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        return _fail(_one_line(f"{where}{e.strerror or e}"), EXIT_FAILURE)
    except MemoryError:
        if debug:
            raise
        return _fail(
            "out of memory; use a smaller file, fewer columns or an exact solver "
            "(which streams the rows)",
            EXIT_FAILURE,
        )
    except Exception as e:
        if debug:
            raise
        if received() is not None:  # the run was interrupted: this error is how it ended
            return _interrupted(received())
        if _is_linalg_error(e):
            return _fail(
                f"the solver failed numerically ({_one_line(e)}); the data may be degenerate or "
                "badly scaled (values beyond ~1e150): rescale the columns, or try --solver qr",
                EXIT_FAILURE,
            )
        # A bug, not a user error: still one line, and the way to the full story.
        return _fail(
            f"unexpected {type(e).__name__}: {_one_line(e)}; this is a bug in torchlinreg, "
            "rerun with --debug and report the traceback",
            EXIT_FAILURE,
        )


def _interrupted(e: KeyboardInterrupt) -> int:
    if speaks(e):
        click.echo(f"torchlinreg: {what_happened(e)}", err=True)
    return exit_code(e)


def _is_linalg_error(exc: Exception) -> bool:
    # torch is imported by the commands that compute, not here (--help must start at once);
    # where it was never imported, no torch error can have been raised.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.linalg.LinAlgError)


def _silence_stdout() -> None:
    # Python would report the closed pipe again when it flushes stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # in-process stdout without a descriptor
        pass


def main() -> None:
    code = run(exiting=True)
    if code in (EXIT_INTERRUPTED, 128 + 15, 128 + 1):
        ignore_signals()  # a repeated signal must not interrupt the exit (NOTE [signals])
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = code or EXIT_FAILURE
    sys.exit(code)
