"""Writing an output folder safely: never destroy a user's files, never leave a half-written folder.

The rules (checked before anything is written):

- mcucompile writes only into a folder that does not exist, an empty folder, or a folder it wrote before.
  A folder it wrote holds a manifest (``.mcucompile-manifest.json``) with the SHA-256 of every file it
  wrote; if one of those files was edited or deleted since, or the folder holds a file mcucompile did not
  write, the folder is refused with the names of those files.
- The folder must not hold (or be) one of the compiler's inputs (the model, calibration or test data).
- The new output is built in a sibling folder and swapped in with renames, so the folder is either the old
  output or the new one, never a mixture; the old output is then removed file by file from its manifest
  (build products in the project's build folders, which ``make``/``pio run`` write, go with it).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from . import __version__
from .errors import UserError

MANIFEST = ".mcucompile-manifest.json"
# Folders the generated project's own build writes (Makefile: build/, PlatformIO: .pio/); their content is
# a build product of the folder's own files, so it is not listed file by file and goes with the folder.
BUILD_DIRS = ("build", ".pio")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(root: Path) -> list[str]:
    """Every file under ``root`` (relative, sorted), build folders and the manifest excluded."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in BUILD_DIRS]
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def _read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "mcucompile" or not isinstance(data.get("files"), dict):
        return None
    return data


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def check_output_folder(out_dir: str | Path, inputs: tuple[str | Path, ...] = ()) -> Path:
    """Refuse an output folder that mcucompile may not write (see the module docstring); returns its
    absolute path. Raises UserError naming the folder, the reason and the fix."""
    if not str(out_dir).strip():
        raise UserError("the output folder (-o) is empty; give a folder path, e.g. -o build/model")
    out = Path(os.path.realpath(out_dir))
    for given in inputs:
        p = Path(os.path.realpath(given))
        if _is_within(p, out):
            raise UserError(f"output folder {out_dir} holds the input {given}; mcucompile would replace the folder "
                            "and lose it: choose another -o folder (e.g. -o build/model)")
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out_dir} is a file, not a folder: give a folder path with -o")
    if out.is_dir():
        names = os.listdir(out)
        if names and not any(files for _, _, files in os.walk(out)):
            names = []  # only empty folders (a build tool makes its outputs' folders first): nothing to lose
        if names:
            manifest = _read_manifest(out)
            if manifest is None:
                raise UserError(f"output folder {out_dir} is not empty and was not written by mcucompile; mcucompile "
                                "writes only into a new or empty folder or one it wrote before: choose another -o "
                                "folder or empty this one")
            problems = []
            for rel, digest in sorted(manifest["files"].items()):
                f = out / rel
                if not f.is_file():
                    problems.append(f"{rel} (deleted)")
                elif _sha256(f) != digest:
                    problems.append(f"{rel} (edited)")
            extra = sorted(set(_files(out)) - set(manifest["files"]))
            problems += [f"{rel} (not written by mcucompile)" for rel in extra]
            if problems:
                shown = ", ".join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
                raise UserError(f"output folder {out_dir} was changed since mcucompile wrote it: {shown}; move "
                                "those files out (or choose another -o folder) so they are not overwritten")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot create the output folder {out_dir}: {parent} is a file; choose another -o folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write the output folder {out_dir}: {parent} is not writable; choose a writable -o folder")
    return out


def write_output(out_dir: str | Path, files: dict[str, str | bytes], inputs: tuple[str | Path, ...] = ()) -> Path:
    """Write ``files`` ({relative path: text or bytes}) as the folder ``out_dir``, all or nothing.

    The folder is checked first (``check_output_folder``); the files and the manifest are written to a
    sibling folder, which then replaces ``out_dir`` by renames.
    """
    out = check_output_folder(out_dir, inputs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    except OSError as e:
        raise UserError(f"cannot create the output folder {out_dir} ({e.strerror}); choose a writable -o folder") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; an output folder gets the user's usual mode
        manifest: dict[str, str] = {}
        for rel, content in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            path.write_bytes(data)
            manifest[rel] = hashlib.sha256(data).hexdigest()
            _keep_mtime_if_same(out / rel, path, data)
        (tmp / MANIFEST).write_text(json.dumps({"tool": "mcucompile", "version": __version__, "files": manifest},
                                               indent=1, sort_keys=True) + "\n")
        _swap_in(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the output folder {out_dir} ({e.strerror or e}); check the disk space and "
                        "permissions, or choose another -o folder") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def update_output_files(out_dir: str | Path, files: dict[str, str | bytes], inputs: tuple[str | Path, ...] = ()) -> Path:
    """Replace (or add) ``files`` in an output folder mcucompile wrote, e.g. report.html once bench or verify
    has results, and record them in its manifest, so the next compile into the folder sees it unchanged.

    The folder must be an unchanged output of mcucompile (``check_output_folder``) holding a manifest; its
    other files and its build folders (a firmware just built there) stay. Each file, then the manifest, is
    written beside its place and renamed over it, so a reader sees the old file or the new one, never a part.
    """
    out = check_output_folder(out_dir, inputs)
    manifest = _read_manifest(out)
    if manifest is None:
        raise UserError(f"output folder {out_dir} holds no mcucompile output to add results to; write it first "
                        "(mcucompile MODEL -o OUT), or choose the -o folder a command wrote")
    try:
        for rel, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            _replace_file(out / rel, data)
            manifest["files"][rel] = hashlib.sha256(data).hexdigest()
        _replace_file(out / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    except OSError as e:
        raise UserError(f"cannot write into the output folder {out_dir} ({e.strerror or e}); check the disk space "
                        "and permissions") from None
    return out


def _replace_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.new-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an output file gets the user's usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _keep_mtime_if_same(previous: Path, path: Path, data: bytes) -> None:
    """A file rewritten with the content it had keeps its modification time, so a build system (make, CMake,
    PlatformIO) that compiles the output again after a recompile rebuilds only the files that changed."""
    try:
        st = previous.stat()
        if st.st_size == len(data) and previous.is_file() and previous.read_bytes() == data:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError:
        pass  # no earlier file (or unreadable): the new one keeps its new time


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_in(new: Path, out: Path) -> None:
    """Replace ``out`` (absent, empty, or an earlier output checked unchanged) with ``new``."""
    if not out.exists():
        new.rename(out)
        return
    if not os.listdir(out) or _is_within(Path(os.path.realpath(os.getcwd())), out):
        # an empty folder, or the one the user stands in: keep the folder itself, swap its entries
        _swap_entries(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        new.rename(out)
    except OSError:
        old.rename(out)
        raise
    _remove_output(old)


def _swap_entries(new: Path, out: Path) -> None:
    """Replace the content of ``out`` (empty, or an earlier output) with that of ``new``, entry by entry."""
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for name in os.listdir(out):
            (out / name).rename(old / name)
            moved_out.append(name)
        for name in os.listdir(new):
            (new / name).rename(out / name)
            moved_in.append(name)
    except OSError:
        for name in moved_in:  # put everything back as it was
            (out / name).rename(new / name)
        for name in moved_out:
            (old / name).rename(out / name)
        old.rmdir()
        raise
    new.rmdir()
    _remove_output(old)


def _remove_output(folder: Path) -> None:
    """Delete an earlier output: the files its manifest lists, its build folders, then the empty folders.
    Anything else found in it (nothing, as it was checked) is left in place."""
    manifest = _read_manifest(folder) or {"files": {}}
    for rel in manifest["files"]:
        try:
            (folder / rel).unlink()
        except FileNotFoundError:
            pass
    for d in BUILD_DIRS:
        shutil.rmtree(folder / d, ignore_errors=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    for dirpath, _, _ in sorted(os.walk(folder), key=lambda t: -len(t[0])):
        try:
            os.rmdir(dirpath)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
