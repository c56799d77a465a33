"""Public ids: opaque, prefixed (`org_…`, `ws_…`), never the database integer."""

import secrets
import string

from django.db import models

_ALPHABET = string.ascii_lowercase + string.digits


def new_public_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(16))


class PublicIdField(models.CharField):
    """A unique, prefixed id filled in on first save (bulk_create included)."""

    def __init__(self, *args, prefix: str = "", **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        if not self._unique:  # unique is this field's default, so False must be spelled out
            kwargs["unique"] = False
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value:
            value = new_public_id(self.prefix)
            setattr(model_instance, self.attname, value)
        return value
