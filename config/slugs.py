"""Slugs: `Acme Corp` → `acme-corp`, `acme-corp-2` on collision."""

from django.utils.text import slugify


def slug_base(name: str, *, max_length: int = 50) -> str:
    base = slugify(name or "")[:max_length].strip("-")
    if len(base) < 3:
        base = (base + "-org" if base else "org")[:max_length].strip("-")
    return base


def unique_slug(name: str, taken, *, max_length: int = 50) -> str:
    """The first free slug for `name`; `taken(slug) -> bool` says whether one is in use."""
    base = slug_base(name, max_length=max_length)
    candidate, n = base, 1
    while taken(candidate):
        n += 1
        suffix = f"-{n}"
        candidate = base[: max_length - len(suffix)].rstrip("-") + suffix
    return candidate
