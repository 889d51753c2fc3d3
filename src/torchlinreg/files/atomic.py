"""Atomic writes, the temporary files they leave when killed, and a lock for read-modify-write.

# NOTE [atomic writes]
# A file is written to a temporary name in the target's own folder (same file system, so the
# rename is atomic), flushed and fsync'ed, then ``os.replace``d over the target; the folder is
# fsync'ed so the rename itself survives a power cut. On any failure, KeyboardInterrupt
# included (the CLI turns SIGTERM and SIGHUP into one), the temporary file is removed and an
# existing target is left as it was. A process killed outright (SIGKILL, a power cut) can
# leave a temporary file behind, never a partial target: its name,
# ``.<name>.<host>-<pid>.<random>.tmp``, says who wrote it, and the next write to the same
# path removes those of this host whose process is gone (a live writer's, another host's on
# a shared folder, and names it cannot read are left alone). Writing through a symlink
# replaces the file it points at; a target that is not a regular file (/dev/stdout, a named
# pipe) is written directly, as there is nothing to rename over.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterator

# A temp file name is capped like any name (255 bytes); the target's name is cut to this.
_NAME_CHARS = 120
# Temp files of the earlier naming (no host and pid) are removed once they are this old.
_OLD_STYLE_AGE_S = 24 * 3600


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _host() -> str:
    # dots and dashes separate the parts of a temp name: keep letters and digits only
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _prefix(path: str) -> str:
    return f".{os.path.basename(path)[:_NAME_CHARS]}."


def _tag() -> str:
    return f"{_host()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or we cannot tell: keep its file
    return True


def _is_stale(name: str, prefix: str, host: str, now: float, folder: str) -> bool:
    middle = name[len(prefix) : -len(".tmp")]
    tag, dot, _random = middle.rpartition(".")
    match = re.fullmatch(r"([A-Za-z0-9]+)-(\d+)", tag) if dot else None
    if match:
        return match.group(1) == host and not _pid_alive(int(match.group(2)))
    if "." not in middle and len(middle) == 8:  # the earlier naming: by age only
        with contextlib.suppress(OSError):
            return now - os.lstat(os.path.join(folder, name)).st_mtime > _OLD_STYLE_AGE_S
    return False


def remove_stale_temp_files(path) -> list[str]:
    """Remove the temp files that killed writers of ``path`` left (NOTE [atomic writes]).

    Returns the names removed. Never raises: a folder it cannot list is left as it is.

    Example:
        >>> remove_stale_temp_files("model.safetensors")  # doctest: +SKIP
        ['.model.safetensors.myhost-4242.k3j9a8b1.tmp']
    """
    path = os.path.realpath(os.fspath(path))
    folder, prefix = os.path.dirname(path), _prefix(path)
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return []
    host, now, removed = _host(), time.time(), []
    for name in names:
        if _is_stale(name, prefix, host, now, folder):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
                removed.append(name)
    return removed


def _write_error(exc: OSError, shown: str) -> OSError:
    """The error of a failed write, naming the file (disk full says which file)."""
    what = exc.strerror or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    todo = "; free some space" if exc.errno == errno.ENOSPC or "No space" in what else ""
    return type(exc)(exc.errno, f"cannot write {shown}: {what}{todo}; the old file is unchanged")


def atomic_write(path, write_fn: Callable[[str], None]) -> None:
    """Write ``path`` atomically: ``write_fn(tmp_path)`` writes a temp file that replaces it.

    See NOTE [atomic writes]. Raises :class:`OSError` with a one-line message naming the
    path when the folder is missing or not writable, or when writing fails (disk full);
    other errors from ``write_fn`` propagate. The temp file never outlives a failure.

    Example:
        >>> atomic_write("out.txt", lambda tmp: open(tmp, "w").write("hi"))  # doctest: +SKIP
    """
    path = os.fspath(path)
    if _is_special(path):
        # /dev/stdout, a pipe, a device: nothing to rename over (and, run as root, renaming
        # would replace the device node itself), so write straight to it.
        write_fn(path)
        return
    # Through a symlink, the file it points at is replaced, and the link stays a link.
    shown, path = path, os.path.realpath(path)
    folder = os.path.dirname(path)
    remove_stale_temp_files(path)
    tmp = None
    try:
        tmp = _new_temp_file(path, folder)
    except OSError as exc:
        _discard(tmp)
        raise type(exc)(
            exc.errno,
            f"cannot write {shown}: {exc.strerror}; check that the folder exists and is writable",
        ) from None
    except BaseException:
        _discard(tmp)
        raise
    try:
        write_fn(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise _write_error(exc, shown) from None
    except BaseException:
        _discard(tmp)
        raise
    _fsync_dir(folder)


def _new_temp_file(path: str, folder: str) -> str:
    """Create the temp file and return its name, the name chosen first: ``mkstemp`` names
    the file only once it exists, so Ctrl-C or SIGTERM arriving inside it left a temp file
    nobody knew to remove."""
    for _ in range(100):
        name = os.path.join(folder, f"{_prefix(path)}{_tag()}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        except BaseException:  # a signal between creating and returning: leave nothing
            _discard(name)
            raise
        return name
    raise FileExistsError(errno.EEXIST, "no free temp file name", folder)


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _is_special(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _keep_mode(path: str, tmp: str) -> None:
    # mkstemp creates 0600; give the new file the old file's mode, or the usual umask default.
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)


def _umask() -> int:
    # Linux shows the umask in /proc; elsewhere set-and-restore (briefly process-wide).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Example:
        >>> atomic_write_bytes("model.bin", b"\\x00\\x01")  # doctest: +SKIP
    """

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)


@contextlib.contextmanager
def locked(path) -> Iterator[None]:
    """Hold an exclusive lock on the existing file ``path`` (read, change, write back).

    Two processes that update one file each take the lock before reading it, so neither
    update is lost. An atomic write replaces the file, so the lock is taken on the file the
    path names *after* locking (a waiter that wakes on a replaced file locks the new one).
    Advisory (``fcntl.flock``); where there is no fcntl (Windows) it does nothing.

    Example:
        >>> with locked("model.safetensors"):  # doctest: +SKIP
        ...     update(load("model.safetensors"))
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = os.fspath(path)
    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now = os.stat(path)
            held = os.fstat(fd)
        except FileNotFoundError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


__all__ = ["atomic_write", "atomic_write_bytes", "locked", "remove_stale_temp_files"]
