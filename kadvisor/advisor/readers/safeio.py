"""Reading a user-named file without hanging, exhausting memory or guessing its encoding.

A training log is a small regular file. Anything else — a named pipe (opening one
blocks until a writer comes), a character device such as ``/dev/zero`` (endless), a
symbolic-link loop — is refused in one line before a byte is read; regular files are
read up to a size limit (``/proc`` files report size 0, so the limit is enforced on
the read itself, not on ``stat``).
"""

from __future__ import annotations

import codecs
import errno
import os
import stat

from kadvisor.errors import InputError

MAX_BYTES = 64 * 1024 * 1024  # a training log is small; refuse to slurp huge files

_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def check_path(path: str) -> os.stat_result:
    """Stats ``path``, turning the ways it can be missing into one clear line.

    Raises:
        InputError: No such file, a symbolic-link loop, a dangling link, no permission.
    """
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{path}: symbolic link loop (the link points back to itself)") from None
        if os.path.islink(path):
            raise InputError(f"{path}: broken symbolic link (points to '{os.readlink(path)}', which does not exist)") from None
        if exc.errno == errno.ENOENT:
            raise InputError(f"{path}: no such file or directory") from None
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def kind_of(mode: int) -> str | None:
    """"a named pipe", "a character device", … for what is not a regular file, else None."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def read_bytes(path: str, limit: int = MAX_BYTES, head: bool = False) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes.

    Args:
        path: The file.
        limit: The most bytes read.
        head: Return the first ``limit`` bytes of a longer file instead of refusing it.

    Raises:
        InputError: Not a regular file, larger than ``limit``, unreadable.
    """
    check_path(path)
    try:
        # O_NONBLOCK: opening a FIFO that slipped past the check must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        kind = kind_of(os.fstat(fd).st_mode)
        if kind is not None:
            raise InputError(f"{path}: {kind}, not a log file; expected a regular file (CSV, JSON or TensorBoard events)")
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit and head:
        return data[:limit]
    if len(data) > limit:
        raise InputError(f"{path}: file too large for a training log (over {limit} bytes)")
    return data


def decode_text(data: bytes, path: str) -> str:
    """Decodes a text log: UTF-8 (with or without BOM), UTF-16/32 with a BOM or by the
    pattern of zero bytes, else Latin-1; binary content is refused.

    Raises:
        InputError: Binary content (zero bytes that are not UTF-16/32 text).
    """
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _decode(data, codec, path)
    head = data[:4096]
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            return _decode(data, "utf-16-le", path)
        if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            return _decode(data, "utf-16-be", path)
        raise InputError(f"{path}: binary file (not text), expected a CSV or JSON training log "
                         f"or TensorBoard events")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode(data: bytes, codec: str, path: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: looks like {codec.upper()} text but does not decode ({exc.reason} at byte {exc.start})") from None


def read_text(path: str, limit: int = MAX_BYTES) -> str:
    """`read_bytes` then `decode_text`."""
    return decode_text(read_bytes(path, limit), path)
