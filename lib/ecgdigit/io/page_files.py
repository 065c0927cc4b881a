"""Which files a list of page arguments names: files as given, folders expanded to their images."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass
class PageList:
    pages: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (argument, what is wrong)


def expand_pages(arguments: list[str | Path]) -> PageList:
    """Files are kept whatever their suffix (the image reader says if one is not an image); a folder
    gives its image files (not its subfolders), sorted by name; each page once, in argument order."""
    out = PageList()
    seen: set[Path] = set()
    for arg in map(Path, arguments):
        if arg.is_dir():
            found = sorted((p for p in arg.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                           key=lambda p: p.name)
            if not found:
                out.problems.append((arg, f"folder holds no image files ({', '.join(IMAGE_SUFFIXES)})"))
        elif arg.exists():
            found = [arg]
        else:
            out.problems.append((arg, "no such file or folder"))
            continue
        for page in found:
            key = page.resolve()
            if key not in seen:
                seen.add(key)
                out.pages.append(page)
    return out
