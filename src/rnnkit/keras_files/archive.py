"""Read and write the zip archive of a Keras 3 ``.keras`` file, refusing hostile archives.

A ``.keras`` file is a zip holding ``config.json`` (architecture and compile settings),
``metadata.json`` (versions) and ``model.weights.h5`` (the variables). Reading accepts exactly
those members, each once, and checks the central directory before anything is decompressed:

* no other names (so no ``../`` paths, absolute paths or assets), no duplicates;
* each member's declared size is at most its limit (``MEMBER_LIMITS``), the total at most
  ``MAX_TOTAL_BYTES``, and a compressed member expands at most ``MAX_RATIO`` times;
* while decompressing, no member may give more bytes than it declared (zipfile checks the CRC).

Writing stores the members uncompressed (as Keras does) with a fixed timestamp, so the same model
gives the same bytes.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import BinaryIO

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
MEMBER_LIMITS = {CONFIG: 64 * 1024 * 1024, METADATA: 1024 * 1024, WEIGHTS: 16 * 1024 ** 3}
MAX_TOTAL_BYTES = 16 * 1024 ** 3 + 65 * 1024 * 1024
#: the most a compressed member may expand (deflate reaches ~1000 only on crafted data; JSON stays well under)
MAX_RATIO = 200
#: the zip timestamp of every member: the earliest a zip can hold, so files differ only by content
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_MAGIC = b"PK\x03\x04"


def read_members(path, file_size: int, fail) -> dict[str, bytes]:
    """``{member name: bytes}`` of a checked ``.keras`` archive; ``fail(reason)`` makes the error."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_directory(infos, file_size, fail)
            out = {}
            for info in infos:
                with archive.open(info) as member:
                    data = member.read(info.file_size + 1)
                if len(data) != info.file_size:
                    raise fail(f"member {info.filename!r} gives {len(data)} bytes but declares {info.file_size}.")
                out[info.filename] = data
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise fail(f"it is not a readable zip archive ({type(exc).__name__}: {exc}).") from None


def _check_directory(infos: list, file_size: int, fail) -> None:
    names = [info.filename for info in infos]
    unexpected = sorted({n for n in names if n not in MEMBER_LIMITS})
    if unexpected:
        raise fail(f"its zip holds unexpected member(s) {[n[:80] for n in unexpected[:5]]}; a Keras model file "
                   f"holds only {sorted(MEMBER_LIMITS)}.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise fail(f"its zip holds member(s) {duplicates} more than once.")
    missing = sorted({CONFIG, WEIGHTS} - set(names))
    if missing:
        raise fail(f"its zip lacks {missing}.")
    total = 0
    for info in infos:
        if info.file_size < 0 or info.compress_size < 0 or info.file_size > MEMBER_LIMITS[info.filename]:
            raise fail(f"member {info.filename!r} declares {info.file_size} bytes; the limit is "
                       f"{MEMBER_LIMITS[info.filename]}.")
        if info.compress_size > file_size:
            raise fail(f"member {info.filename!r} claims {info.compress_size} compressed bytes but the file "
                       f"holds {file_size}.")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise fail(f"stored member {info.filename!r} declares {info.file_size} bytes but holds "
                       f"{info.compress_size}.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise fail(f"member {info.filename!r} uses compression method {info.compress_type}; expected stored "
                       "or deflated.")
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 1024 * 1024:
            raise fail(f"member {info.filename!r} would expand {info.file_size} / {info.compress_size} times, "
                       f"more than {MAX_RATIO}: a zip bomb.")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise fail(f"its zip members add up to {total} bytes; the limit is {MAX_TOTAL_BYTES}.")


def zip_writer(members: list[tuple[str, bytes]]):
    """A function writing ``members`` as a deterministic zip (stored, fixed timestamps) to an open binary file."""
    def write(f: BinaryIO) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in members:
                info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        f.write(buffer.getvalue())
    return write
