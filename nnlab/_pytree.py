"""Frozen dataclasses as pytrees whose structure includes their class.

``jax.tree_util.register_dataclass`` (jax 0.10) gives two classes with the same fields
*equal* treedefs: ``tree_structure(Abs()) == tree_structure(Sign())``. ``jax.jit`` keys its
cache on the treedef, so one layer class can be handed the compiled kernel of another
(a silently wrong result). :func:`register_dataclass` here builds the flatten/unflatten
pair itself with :func:`jax.tree_util.register_pytree_with_keys`, whose treedefs compare
the node type, and keeps attribute key paths (``GetAttrKey``) for ``tree_flatten_with_path``.

Fields marked ``metadata={"static": True}`` are static (part of the treedef, hashed);
all other fields are children.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
from jax.tree_util import GetAttrKey

__all__ = ["register_dataclass"]


def register_dataclass(
    cls: type,
    data_fields: Sequence[str] | None = None,
    meta_fields: Sequence[str] | None = None,
) -> type:
    """Register the dataclass ``cls`` as a pytree; returns ``cls``.

    Without explicit ``data_fields``/``meta_fields``, fields whose metadata has
    ``static=True`` are meta (static) fields and the others data fields.
    """
    fields = [f for f in dataclasses.fields(cls) if f.init]
    if data_fields is None and meta_fields is None:
        meta_fields = [f.name for f in fields if f.metadata.get("static", False)]
        data_fields = [f.name for f in fields if not f.metadata.get("static", False)]
    elif data_fields is None or meta_fields is None:
        raise ValueError("register_dataclass: give both data_fields and meta_fields, or neither.")
    data_fields, meta_fields = tuple(data_fields), tuple(meta_fields)
    missing = {f.name for f in fields} - set(data_fields) - set(meta_fields)
    if missing:
        raise ValueError(
            f"register_dataclass({cls.__name__}): fields {sorted(missing)} unassigned."
        )
    keys = tuple(GetAttrKey(name) for name in data_fields)

    def flatten_with_keys(obj):
        children = [(k, getattr(obj, n)) for k, n in zip(keys, data_fields, strict=True)]
        return children, tuple(getattr(obj, n) for n in meta_fields)

    def flatten(obj):
        return [getattr(obj, n) for n in data_fields], tuple(getattr(obj, n) for n in meta_fields)

    def unflatten(meta, children):
        # Bypass __init__/__post_init__: children may be tracers, None or sentinel objects.
        obj = object.__new__(cls)
        for name, value in zip(data_fields, children, strict=True):
            object.__setattr__(obj, name, value)
        for name, value in zip(meta_fields, meta, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    return cls
