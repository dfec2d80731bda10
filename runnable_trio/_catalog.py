"""The catalog: files a task gets from, and puts into, its run's catalog folder.

Each run has a catalog folder, ``<catalog folder>/<run_id>/`` (``.catalog/<run_id>/`` by
default). A task's ``Catalog(get=[...])`` copies the files matching the globs from there into
the working folder before the task runs; ``put=[...]`` copies the matching files of the
working folder there after it succeeded. Every file moved is recorded on the step with its
sha256. A glob that matches no file fails the step, naming the glob: a missing input or
output is a failure, not a silent skip. Globs match files (``data/**/*`` for a folder's
tree); files under the catalog and run-log folders are never ``put``.

Nothing escapes the two roots: an absolute glob or one with a ``..`` part is rejected when
the ``Catalog`` is built, and a match or destination that resolves outside its root (through
a symlink) fails the step. A new run's catalog folder must not exist yet (a symlink planted
there fails the run at the call, :meth:`RunCatalog.check_new`); files are written into it
through folder descriptors that follow no symlink below the catalog folder, each as a new
temporary file renamed into place (``_files``).

``pickled`` returns are pickled into ``<run catalog>/%pickled/<step path>/<name>.pickle``
(``%`` cannot appear in a step name, so no user file can clash). Later steps of the run
receive the object itself; a retried run loads it from there for the steps it reuses.

File work runs in a worker thread; cancelling a step waits for the file in hand.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import stat
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from ._errors import RunConfigurationError, StepError
from ._files import ensure_absent, open_folder, replace_atomically
from ._offloop import run_blocking
from ._runlog import CatalogEntry
from ._validators import checked_init, definition_error

__all__ = ["DEFAULT_CATALOG_FOLDER", "PICKLED_FOLDER", "Catalog", "RunCatalog"]

DEFAULT_CATALOG_FOLDER = ".catalog"
PICKLED_FOLDER = "%pickled"
_CHUNK = 1 << 20


def _patterns(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def _check_patterns(instance: Catalog, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(p, str) and p for p in value):
        raise definition_error(instance, attribute.name, "a list of non-empty glob str", value)
    for pattern in value:
        parts = pattern.replace("\\", "/").split("/")
        if pattern.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
            raise definition_error(
                instance,
                attribute.name,
                "relative and stay inside its folder (no leading '/', drive or '..' part)",
                pattern,
            )


def _check_store_copy(instance: Catalog, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise definition_error(instance, "store_copy", "a bool", value)


@checked_init
@attrs.frozen(kw_only=True)
class Catalog:
    """Files to copy around a task.

    Args:
        get: glob patterns copied from ``.catalog/<run_id>/`` into the working folder
            before the task runs.
        put: glob patterns copied from the working folder into ``.catalog/<run_id>/``
            after the task succeeds.
        store_copy: keep a copy of ``put`` files in the catalog (True) or only record their
            names and hashes (False).
    """

    get: Sequence[str] = attrs.field(default=(), converter=_patterns, validator=_check_patterns)
    put: Sequence[str] = attrs.field(default=(), converter=_patterns, validator=_check_patterns)
    store_copy: bool = attrs.field(default=True, validator=_check_store_copy)


#: The working folder and resolved folders of ``RunCatalog.for_run``, by working folder and
#: folder names as given.
_roots: dict[tuple[str, ...], tuple[Path, tuple[Path, ...]]] = {}
_ROOTS_KEPT = 64


def _resolved_here(name: str, working: Path) -> Path:
    """The folder ``name`` as ``Path(name).resolve()`` gives it, ``working`` being the
    process's working folder.

    A name of one part that is not a symbolic link (or is not there) is the working folder's
    child: one ``lstat``, where ``resolve`` costs a process's first run ~70,000 instructions
    of ``realpath``. Anything else (a link, a path of several parts) is resolved.
    """
    if (
        name not in ("", ".", "..")
        and os.sep not in name
        and (os.altsep is None or os.altsep not in name)
    ):
        try:
            if not stat.S_ISLNK(os.lstat(name).st_mode):
                return working / name
        except FileNotFoundError:
            return working / name
        except OSError:
            pass  # resolve() says what it makes of it
    return Path(name).resolve()


# Not frozen (nothing assigns its fields after it is made): a frozen class's ``__init__`` sets
# each field through ``object.__setattr__``: ~6,000 instructions for these four, against
# ~2,300 here, on the way to every run's first event.
@attrs.define
class RunCatalog:
    """One run's catalog folder and the working folder files move between.

    Attributes:
        folder: the catalog folder the run's folder is in (absolute).
        run_id: the run's id, the name of its folder there.
        root: the run's catalog folder (absolute; created when first written).
        workdir: the working folder (absolute).
        excluded: folders whose files a ``put`` never takes (the catalog and run-log
            folders).
    """

    folder: Path
    run_id: str
    workdir: Path
    excluded: tuple[Path, ...] = ()

    @functools.cached_property
    def root(self) -> Path:
        # Made when first needed: a Path joined costs more than the rest of the catalog
        # (~17k instructions), on the way to every run's first event, and most runs never
        # touch their catalog.
        return self.folder / self.run_id

    @classmethod
    def for_run(
        cls,
        run_id: str,
        folder: str = DEFAULT_CATALOG_FOLDER,
        *also_excluded: str,
        workdir: str | None = None,
    ) -> RunCatalog:
        """The catalog of ``run_id`` under ``folder``, both taken from the working folder
        (``workdir``, as ``os.getcwd()`` gives it: read here if not given).

        The folders are resolved once per working folder and process (symbolic links on
        their way are followed as they were then), not at every run.
        """
        key = (os.getcwd() if workdir is None else workdir, folder, *also_excluded)
        roots = _roots.get(key)
        if roots is None:
            working = Path(key[0])
            # The process's working folder, as os.getcwd() gives it, has no symbolic link on
            # its way: a folder is then resolved from it, one look at each of its own parts
            # rather than at every part from the root (on the way to a process's first event,
            # ~160k instructions and a system call per part of the working folder fewer).
            names = (folder, *also_excluded)
            excluded: tuple[Path, ...] | None = None
            if workdir is None or workdir == os.getcwd():
                excluded = tuple(_resolved_here(name, working) for name in names)
                # Looked at from the process's working folder of the moment: if another
                # thread changed it meanwhile, what was seen may not be working's.
                if os.getcwd() != key[0]:
                    excluded = None
            if excluded is None:
                excluded = tuple((working / name).resolve() for name in names)
            if len(_roots) >= _ROOTS_KEPT:
                _roots.clear()
            roots = _roots[key] = (working, excluded)
        working, excluded = roots
        return cls(excluded[0], run_id, working, excluded)

    def check_new(self) -> None:
        """Refuse a new run whose catalog folder is already there (a planted symlink too).

        Raises:
            RunConfigurationError: naming the path.
        """
        try:
            ensure_absent(self.root)
        except FileExistsError as exc:
            raise RunConfigurationError(f"the run cannot start: {exc.strerror}") from None

    async def get(self, patterns: Sequence[str], step: str) -> list[CatalogEntry]:
        """Copy the catalog files matching ``patterns`` into the working folder.

        Raises:
            StepError: a glob matched nothing, or a path leads outside its root.
        """
        return await run_blocking(self._get, patterns, step)

    async def put(
        self, patterns: Sequence[str], step: str, *, store_copy: bool
    ) -> list[CatalogEntry]:
        """Copy (or only hash) the working folder's files matching ``patterns``.

        Raises:
            StepError: a glob matched nothing, or a path leads outside its root.
        """
        return await run_blocking(self._put, patterns, step, store_copy)

    async def put_object(self, step: str, name: str, value: Any) -> CatalogEntry:
        """Pickle the return ``name`` of ``step`` into the catalog.

        Raises:
            StepError: the value cannot be pickled.
        """
        return await run_blocking(self._put_object, step, name, value)

    def load_object(self, entry: CatalogEntry) -> Any:
        """The object a ``pickled`` entry holds (read synchronously; used to retry a run)."""
        path = self._inside(self.root, self.root / entry.name, entry.name, None)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise ValueError(f"{str(path)!r} has changed since it was recorded")
        return pickle.loads(data)

    # Worker-thread side.

    def _get(self, patterns: Sequence[str], step: str) -> list[CatalogEntry]:
        entries = []
        for pattern in patterns:
            matches = [
                match
                for match in self._matches(self.root, pattern, step)
                if match.relative_to(self.root).parts[0] != PICKLED_FOLDER
            ]
            if not matches:
                raise StepError(
                    step, f"catalog get {pattern!r} matched no file in {str(self.root)!r}"
                )
            for source in matches:
                name = source.relative_to(self.root).as_posix()
                target = self._inside(self.workdir, self.workdir / name, name, step)
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                replace_atomically(target, _chunks(source, digest))
                entries.append(CatalogEntry(name, digest.hexdigest(), "get"))
        return entries

    def _put(self, patterns: Sequence[str], step: str, store_copy: bool) -> list[CatalogEntry]:
        entries = []
        for pattern in patterns:
            matches = [
                match
                for match in self._matches(self.workdir, pattern, step)
                if not any(match.is_relative_to(folder) for folder in self.excluded)
            ]
            if not matches:
                raise StepError(
                    step, f"catalog put {pattern!r} matched no file in the working folder"
                )
            for source in matches:
                name = source.relative_to(self.workdir).as_posix()
                if store_copy:
                    self._inside(self.root, self.root / name, name, step)
                    hashed = hashlib.sha256()
                    self._write(PurePosixPath(name), _chunks(source, hashed))
                    digest = hashed.hexdigest()
                else:
                    digest = _hash(source)
                entries.append(CatalogEntry(name, digest, "put"))
        return entries

    def _put_object(self, step: str, name: str, value: Any) -> CatalogEntry:
        try:
            data = pickle.dumps(value)
        except Exception as exc:
            raise StepError(
                step, f"pickled return {name!r} cannot be pickled: {type(exc).__name__}: {exc}"
            ) from exc
        relative = PurePosixPath(
            PICKLED_FOLDER, urllib.parse.quote(step, safe="._-"), f"{name}.pickle"
        )
        self._write(relative, data)
        return CatalogEntry(
            relative.as_posix(), hashlib.sha256(data).hexdigest(), "pickled", parameter=name
        )

    def _write(self, relative: PurePosixPath, data: bytes | Iterator[bytes]) -> None:
        """Write ``root/relative`` atomically, following no symlink below the catalog folder."""
        folders = relative.parts[:-1]
        with open_folder(self.root.parent, self.root.name, *folders, create=True) as fd:
            replace_atomically(Path(relative.name), data, dir_fd=fd)

    def _matches(self, base: Path, pattern: str, step: str) -> list[Path]:
        if not base.is_dir():
            return []
        found = []
        for match in sorted(base.glob(pattern)):
            if match.is_file():
                self._inside(base, match, match.relative_to(base).as_posix(), step)
                found.append(match)
        return found

    @staticmethod
    def _inside(base: Path, path: Path, name: str, step: str | None) -> Path:
        """``path`` if it resolves inside ``base`` (following symlinks), else an error.

        ``base`` is taken as it is (its parents are resolved already): a run's catalog folder
        that is itself a symlink leads outside.
        """
        if not path.resolve().is_relative_to(base):
            message = f"catalog path {name!r} leads outside {str(base)!r} (through a symlink)"
            raise StepError(step, message) if step is not None else ValueError(message)
        return path


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(source: Path, digest: Any) -> Iterator[bytes]:
    """The content of ``source`` in chunks, hashed into ``digest`` on the way."""
    with open(source, "rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            yield chunk
