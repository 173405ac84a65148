"""Is this source fit to upload? A file: a video, decided from the container's signature bytes,
never by decoding. A URL: `http(s)://` and well formed (Mux fetches it)."""

from __future__ import annotations

import hashlib
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from vidpipe.errors import UsageError
from vidpipe.text import shown as shown_text

SNIFF_BYTES = 512

# ISO base media (MP4, MOV, 3GP, M4V): a box type at offset 4. Old QuickTime files may open
# with a box other than `ftyp`.
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
# Containers that open with a fixed signature.
_MAGIC = {
    b"\x1a\x45\xdf\xa3": "matroska/webm",
    b"FLV\x01": "flv",
    b"\x00\x00\x01\xba": "mpeg-ps",
    b"\x00\x00\x01\xb3": "mpeg-video",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11": "asf/wmv",
    b"\x06\x0e\x2b\x34": "mxf",
    b"OggS": "ogg",
}.items()


def sniff_container(head: bytes) -> str | None:
    """The container format named by the file's first bytes, or None."""
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:
        return "mp4/mov"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    for magic, container in _MAGIC:
        if head.startswith(magic):
            return container
    if head[:1] == b"\x47" and (len(head) < 189 or head[188:189] == b"\x47"):
        # MPEG-TS: a sync byte every 188 bytes.
        return "mpeg-ts" if len(head) >= 189 else None
    return None


@dataclass(frozen=True)
class VideoFile:
    path: Path
    size: int
    mtime_ns: int
    container: str


def check_video_file(path: Path) -> VideoFile:
    """Validate a file to upload; raise UsageError (exit 2) with one line if it is not fit."""
    shown = shown_text(str(path))  # a file name is anyone's text
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{shown}: is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{shown}: is not a regular file")
    if st.st_size == 0:
        raise UsageError(f"{shown}: is empty")
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read ({exc.strerror})") from None
    container = sniff_container(head)
    if container is None:
        raise UsageError(
            f"{shown}: does not look like a video (no MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, "
            "FLV, ASF, MXF or Ogg signature)"
        )
    return VideoFile(path.resolve(), st.st_size, st.st_mtime_ns, container)


URL_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(text: str) -> bool:
    """Whether a source names a URL (any `scheme://`) rather than a file path."""
    return _SCHEME.match(text) is not None


def check_url(text: str) -> str:
    """Validate a video URL for Mux to fetch: `http(s)://host/...` (syntax only: whether it
    can be fetched is Mux's to find out). Raise UsageError with one line if it is not."""
    shown = display_source(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(f"{shown}: not a valid URL") from None
    if parts.scheme.lower() not in URL_SCHEMES:
        raise UsageError(f"{shown}: neither a file nor an http(s):// URL")
    if not parts.hostname:
        raise UsageError(f"{shown}: the URL names no host")
    if port == 0:
        raise UsageError(f"{shown}: the URL's port is not valid")
    if any(c.isspace() or ord(c) < 32 for c in text):
        raise UsageError(f"{shown}: a URL must not contain spaces or control characters")
    return text


def display_source(text: str) -> str:
    """A source as messages show it: a URL loses its user:password, query and fragment,
    which often carry a credential (an S3 presigned URL's signature)."""
    if not is_url(text):
        return text
    head = text.split("#", 1)[0]
    base, sep, _ = head.partition("?")
    scheme, _, rest = base.partition("://")
    authority, slash, path = rest.partition("/")
    authority = authority.rsplit("@", 1)[-1]
    return f"{scheme}://{authority}{slash}{path}" + ("?…" if sep else "")


def url_key(url: str) -> str:
    """What the journal keeps for a URL source: the URL as `display_source` shows it plus a
    digest of the whole URL. The same URL always gives the same key (so a re-run finds its
    entry), and no query string (an S3 presigned URL's signature) is ever stored."""
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{display_source(url)} sha256={digest}"


@dataclass(frozen=True)
class FileSource:
    """A video file, checked (`check_video_file`): vidpipe moves its bytes to Mux."""

    video: VideoFile

    @property
    def key(self) -> str:
        """What the journal keeps as the source: the file's absolute path."""
        return str(self.video.path)

    @property
    def shown(self) -> str:
        """The source as messages show it: the file's name."""
        return self.video.path.name

    @property
    def size(self) -> int:
        return self.video.size

    @property
    def mtime_ns(self) -> int:
        return self.video.mtime_ns


@dataclass(frozen=True)
class UrlSource:
    """A video URL, checked (`check_url`): Mux fetches it itself, nothing is transferred."""

    url: str

    @property
    def key(self) -> str:
        """What the journal keeps as the source: `url_key` (no query string is stored)."""
        return url_key(self.url)

    @property
    def shown(self) -> str:
        """The source as messages show it (`display_source`: no credential, no query)."""
        return display_source(self.url)

    size = 0
    mtime_ns = 0


Source = FileSource | UrlSource
"""Where an upload's video comes from."""


def check_source(text: str | Path, *, base: Path | None = None) -> Source:
    """`text` as a checked source: an `http(s)://` URL, or a video file (a relative path is
    taken from `base` when given, and named in messages as written). UsageError (one line)
    when it is neither fit to send nor to fetch."""
    if isinstance(text, str) and is_url(text):
        return UrlSource(check_url(text))
    path = Path(text)
    if base is not None:  # a manifest's line: `~` and paths relative to the manifest's folder
        path = path.expanduser()
        path = path if path.is_absolute() else base / path
    try:
        return FileSource(check_video_file(path))
    except UsageError as exc:
        message, shown = str(exc), str(path)
        if message.startswith(shown):
            message = str(text) + message[len(shown) :]
        raise UsageError(message) from None
