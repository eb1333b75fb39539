"""One lookup helper for every kind of named option (activations, losses, ...).

Each kind keeps a ``{name: factory}`` table; ``resolve`` turns a user's string into an
object and is the single place the "unknown name, valid names are ..." error comes from.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping


def resolve(kind: str, identifier: Any, table: Mapping[str, Callable[[], Any]], base: type) -> Any:
    """Return an instance for ``identifier``: a name from ``table`` or an instance of ``base``.

    Raises:
        ValueError: the name is not in the table (the message lists the valid names).
        TypeError: the identifier is neither a string nor a ``base`` instance.
    """
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in table:
            return table[key]()
        valid = ", ".join(sorted(table))
        raise ValueError(f"Unknown {kind} {identifier!r}. Valid {kind} names are: {valid}.")
    raise TypeError(
        f"Expected a {kind} name (str) or a {base.__name__} instance, "
        f"got {type(identifier).__name__}: {identifier!r}."
    )


def from_config(kind: str, config: dict, table: Mapping[str, Callable[..., Any]],
                class_names: Mapping[str, str]) -> Any:
    """An instance from a serialised ``{"class_name": name, "config": {...}}``.

    ``name`` is looked up in ``table`` (``class_names`` maps Keras' class names, such as ``"MaxNorm"``,
    to the table's), and the class is called with the config's arguments.
    """
    name = config.get("class_name")
    key = class_names.get(name, name.lower() if isinstance(name, str) else None)
    cls = table.get(key)
    if cls is None:
        raise ValueError(f"Unknown {kind} {name!r}. Valid {kind} names are: {', '.join(sorted(table))}.")
    args = config.get("config", {})
    if not isinstance(args, dict):
        raise TypeError(f"The config of {kind} {name!r} must be a dict, got {args!r}.")
    try:
        return cls(**args)
    except TypeError as exc:
        raise ValueError(f"Invalid config for {kind} {name!r}: {exc}.") from None
