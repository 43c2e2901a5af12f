"""Run directories: where a run's artifacts and metadata live.

Each run gets its own directory (default `runs/<task>/<UTC timestamp>/`). It
holds the resolved `spec.toml`, `metadata.json` (backend, versions, seed, host,
start/end time and `status`), and whatever the task writes: `history.csv`,
`model.keras`, `metrics.json`, plots. Files are written atomically (a temporary
file renamed into place), an existing run directory is never reused, and a run
that fails or is interrupted is marked `failed` / `interrupted`, never left
looking complete.

Example:
    >>> import tempfile, pathlib
    >>> from kmodels.runs import RunDir
    >>> rd = RunDir.create("demo", out=pathlib.Path(tempfile.mkdtemp()) / "run")
    >>> _ = rd.write_json("metrics.json", {"accuracy": 1.0})
    >>> sorted(p.name for p in rd.path.iterdir())
    ['metadata.json', 'metrics.json']
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kmodels.errors import ConfigError, RunError
from kmodels.saving import LOCK, METADATA, SPEC

logger = logging.getLogger("kmodels")

STATUS_RUNNING = "running"
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"
#: The lock file a running run holds (see `RunDir.exclusive`).
LOCK_FILE = LOCK


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it: set and restore at once
    os.umask(mask)
    return mask


#: Read once at import (setting the umask, even for an instant, is not thread-safe).
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_target(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on error removed.

    So a reader sees either the old file, no file, or the complete new one. `suffix`
    matters to writers that pick a format by extension (`.keras`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600; give the file the mode any other file the user writes gets (0666 less umask)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def alive(pid: Any) -> bool:
    """Whether another process `pid` runs on this machine (`False` for this process or a non-integer)."""
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` via a temporary file renamed into place."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


#: Size caps on what kmodels reads from a run directory (a stranger's files are data, and bounded):
#: JSON and TOML files, the uncompressed members of the preprocessing (skops) and of `model.keras`.
MAX_TEXT_BYTES = 16 * 2**20
MAX_STATE_BYTES = 512 * 2**20
MAX_MODEL_BYTES = 2 * 2**30


def regular_file(path: str | Path, limit: int, what: str = "file") -> Path:
    """`path`, checked to be a regular file (after symlinks) of at most `limit` bytes, before anything opens it.

    A FIFO, a device such as `/dev/zero`, a folder or an oversized file is refused with a
    `RunError` naming it: opening a FIFO blocks forever, and reading a device never ends.

    Example:
        >>> regular_file("/dev/zero", 1024)
        Traceback (most recent call last):
        ...
        kmodels.errors.RunError: file '/dev/zero' is not a regular file (a device, FIFO or folder); ...
    """
    import stat

    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise RunError(f"{what} {str(path)!r} not found.") from None
    except OSError as exc:
        raise RunError(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise RunError(f"{what} {str(path)!r} is not a regular file (a device, FIFO or folder); kmodels reads only "
                       "regular files. Replace it with the file it should be.")
    if info.st_size > limit:
        raise RunError(f"{what} {str(path)!r} is {info.st_size:,} bytes, over the {limit:,}-byte limit for it; "
                       "it is not a file kmodels wrote.")
    return path


def check_zip(path: Path, limit: int, what: str) -> None:
    """Refuse a zip archive (`.keras`, `.skops`) that is unreadable or whose members inflate past `limit` bytes."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RunError(f"{what} {str(path)!r} is not a readable zip archive ({exc}); it is damaged or not what "
                       "kmodels wrote.") from None
    if total > limit:
        raise RunError(f"{what} {str(path)!r} inflates to {total:,} bytes, over the {limit:,}-byte limit; refusing "
                       "to load it (a zip bomb, or not a file kmodels wrote).")


class RunDir:
    """One run's directory.

    Args:
        path: an existing run directory (use `RunDir.create` for a new one).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @staticmethod
    def check_out(out: str | Path | None) -> None:
        """Refuse an `out` that cannot become a new run directory, before any work is done."""
        if out is None:
            return
        path = Path(out).expanduser()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunError(
                f"--out {str(path)!r} exists and is not an empty directory; kmodels never "
                "writes into existing results. Choose a new path or remove it yourself."
            )

    @classmethod
    def create(cls, task: str, out: str | Path | None = None, root: str | Path = "runs") -> RunDir:
        """Make and claim a fresh run directory.

        The claim is atomic: `metadata.json` is created exclusively, so of two
        runs given the same `out` at the same instant exactly one wins.

        Args:
            task: task name, used in the default location.
            out: put the run exactly here; refused unless missing or empty.
            root: parent of the default `<task>/<UTC timestamp>` location.
        """
        if out is not None:
            cls.check_out(out)
            path = Path(out).expanduser()
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"--out {str(path)!r} cannot be created: {exc.strerror}. "
                               "Choose a writable location.") from None
            if not cls._claim(path):
                raise RunError(f"--out {str(path)!r} was claimed by another run at the same time; choose a new path.")
            return cls(path)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        base = Path(root).expanduser() / task
        base.mkdir(parents=True, exist_ok=True)
        for i in range(1000):
            path = base / (stamp if i == 0 else f"{stamp}-{i}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            if cls._claim(path):
                return cls(path)
        raise RunError(f"Could not create a new run directory under {str(base)!r}.")

    @classmethod
    @contextlib.contextmanager
    def scratch(cls, source: RunDir | None = None) -> Iterator[RunDir]:
        """A private, temporary run directory (a copy of `source`'s files when given), removed afterwards.

        The processes of a multi-process run other than process 0 work here: they run the
        same steps, so every collective operation happens on every process, but what they
        write is theirs alone and gone when they finish. A resumed run's copy holds the
        backups and the trained model that process 0 resumes from. The folder's name holds
        the host and process id; the scratch folders of this host's processes that no longer
        run (killed before they could remove theirs) are removed first.
        """
        import shutil

        host = socket.gethostname().replace("-", "_")
        prefix = f"kmodels-scratch-{host}-"
        for stale in Path(tempfile.gettempdir()).glob(f"{glob.escape(prefix)}*-*"):
            pid = stale.name[len(prefix):].split("-", 1)[0]
            if stale.is_dir() and pid.isdigit() and not alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-") as tmp:
            path = Path(tmp) / "run"
            if source is not None:
                shutil.copytree(source.path, path)
            else:
                path.mkdir()
            yield cls(path)

    @staticmethod
    def _claim(path: Path) -> bool:
        """Create `metadata.json` exclusively in an empty `path`; False if another run got there first."""
        try:
            fd = os.open(path / METADATA, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write("{}\n")
        if any(p.name != METADATA for p in path.iterdir()):
            return False  # something else was written meanwhile: not ours alone
        return True

    def file(self, name: str) -> Path:
        return self.path / name

    def inside(self, relative: str, where: str = "path") -> Path:
        """`relative` under this run directory, refused if it resolves outside it (e.g. through a symlink).

        Example:
            >>> import tempfile
            >>> rd = RunDir(tempfile.mkdtemp())
            >>> rd.inside("backup") == rd.path.resolve() / "backup"
            True
        """
        root = self.path.resolve()
        target = (root / relative).resolve()
        if target == root or not target.is_relative_to(root):
            raise RunError(f"{where}: {relative!r} resolves to {str(target)!r}, outside the run directory "
                           f"{str(root)!r} (a symlink?); kmodels only writes inside its run.")
        return target

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[RunDir]:
        """Hold this run directory's lock (`LOCK_FILE`, an OS advisory lock) for the block, or raise `RunError`.

        A run holds it from the moment it writes its spec until it ends, so a second
        `kmodels run --resume` of the same directory is refused instead of training beside
        the first. The OS drops the lock when the process dies, so a killed run stays resumable.
        """
        import fcntl
        import stat

        try:  # never through a symlink: a stranger's run directory could point it anywhere
            fd = os.open(self.file(LOCK_FILE), os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            raise RunError(f"{str(self.file(LOCK_FILE))!r} cannot be opened as a lock file ({exc.strerror}); "
                           "remove it if it is not a plain file kmodels made.") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunError(f"{str(self.file(LOCK_FILE))!r} is not a regular file; remove it before resuming.")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunError(f"Run {str(self.path)!r} is in use by another kmodels process (pid "
                               f"{self.metadata.get('pid', '?')}); wait for it to end, or stop it, before "
                               "resuming.") from None
            yield self
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def exists(self, name: str) -> bool:
        return self.file(name).exists()

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write(self.file(name), text)

    def write_json(self, name: str, obj: Any) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, default=_json_default) + "\n")

    def readable(self, name: str, limit: int = MAX_TEXT_BYTES) -> Path:
        """The path of `name`, checked before it is opened: it must exist, resolve inside this run
        directory and be a regular file of at most `limit` bytes (see `regular_file`)."""
        path = self.file(name)
        if not os.path.lexists(path):
            raise RunError(f"{str(path)!r} not found: is {str(self.path)!r} a kmodels run directory?")
        target = path.resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise RunError(f"{str(path)!r} leads to {str(target)!r}, outside the run directory; kmodels reads a "
                           "run's files only from inside it.")
        return regular_file(path, limit, what="run file")

    def read_json(self, name: str) -> Any:
        path = self.readable(name)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{str(path)!r} is not valid JSON ({exc}); the run directory is damaged.") from None

    @property
    def metadata(self) -> dict[str, Any]:
        return self.read_json(METADATA) if self.exists(METADATA) else {}

    def _update_metadata(self, **fields: Any) -> None:
        meta = self.metadata
        meta.update(fields)
        self.write_json(METADATA, meta)

    def start(self, *, task: str, seed: int, spec_toml: str, extra: dict[str, Any] | None = None) -> None:
        """Write the spec and the metadata of a run that is starting."""
        from kmodels.backend import info

        self.write_text(SPEC, spec_toml)
        previous = self.metadata if self.exists(METADATA) else {}
        resumed = {"resumed": previous.get("resumed", 0) + 1, "resumed_at": utc_now()} if previous else {}
        self._update_metadata(
            task=task, status=STATUS_RUNNING, seed=seed, start_time=previous.get("start_time") or utc_now(),
            end_time=None, error=None, **resumed,
            host=socket.gethostname(), pid=os.getpid(), command=sys.argv, **info(devices=False),
            **(extra or {}),
        )

    def finish(self, status: str, error: str | None = None) -> None:
        self._update_metadata(status=status, end_time=utc_now(), error=error)

    @contextlib.contextmanager
    def recording(self) -> Iterator[RunDir]:
        """Mark the run completed, or failed/interrupted if the block raises."""
        try:
            yield self
        except KeyboardInterrupt:
            self.finish(STATUS_INTERRUPTED, "interrupted (SIGINT/SIGTERM)")
            logger.error("Run interrupted; %s is marked 'interrupted'.", self.path)
            raise
        except BaseException as exc:
            self.finish(STATUS_FAILED, f"{type(exc).__name__}: {exc}")
            logger.error("Run failed; %s is marked 'failed'.", self.path)
            raise
        else:
            self.finish(STATUS_COMPLETED)
