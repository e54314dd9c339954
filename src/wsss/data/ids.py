"""Image-id lists: reading split files and keeping ids inside the dataset root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from wsss.errors import WsssError


def check_id(image_id: str, source: Path) -> str:
    """Return ``image_id`` if it is a safe relative name, else raise.

    An id may contain ``/`` (Cityscapes ids name a city folder) but no ``..`` part, no leading
    ``/`` or ``~``, no backslash and no control characters, so it can never escape the root.
    """
    parts = PurePosixPath(image_id).parts
    if (
        not image_id
        or image_id.startswith(("/", "~"))
        or "\\" in image_id
        or any(p in ("..", ".") for p in parts)
        or any(ord(ch) < 32 for ch in image_id)
    ):
        raise WsssError(
            f"unsafe image id {image_id!r}: it must stay inside the dataset root", source
        )
    return image_id


def _strip_image_path(field: str) -> str:
    """DeepLab-style list lines give ``/JPEGImages/<id>.jpg``: keep ``<id>``."""
    pure = PurePosixPath(field)
    if pure.suffix.lower() in (".jpg", ".jpeg", ".png") and pure.parent.name == "JPEGImages":
        return pure.stem
    return field


def read_id_list(path: str | Path) -> list[str]:
    """Read a split file: one id per line (first whitespace-separated field), blank lines skipped.

    Raises:
        WsssError: missing file, unsafe id, duplicate id, or no ids at all (empty split).
    """
    path = Path(path)
    if not path.is_file():
        raise WsssError("missing split file", path)
    ids: list[str] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if not fields:
            continue
        image_id = check_id(_strip_image_path(fields[0]), path)
        if image_id in seen:
            raise WsssError(f"duplicate image id {image_id!r}", path)
        seen.add(image_id)
        ids.append(image_id)
    if not ids:
        raise WsssError("empty split: the file lists no image ids", path)
    return ids


def inside(root: Path, relative: str, source: Path) -> Path:
    """Join ``root / relative`` and check that the result does not leave ``root``."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise WsssError(f"path {relative!r} escapes the dataset root {root}", source)
    return path
