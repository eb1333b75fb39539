"""Where Keras keeps each layer's variables, in both of its file layouts.

**Keras 3** (``model.weights.h5`` inside a ``.keras`` zip) names groups by the *object path*, not by
the layer's name: the model's layers are ``layers/<snake_case(class name)>`` made unique in order
(``dense``, ``dense_1``, ...), and a layer's own variables are the datasets ``vars/0``, ``vars/1``, ...
in ``get_weights`` order. Recurrent layers keep theirs in their cell (``layers/lstm/cell/vars``),
``Bidirectional`` in ``forward_layer`` and ``backward_layer``, ``TimeDistributed`` in ``layer``, and a
nested model under its own ``layers/``. (``keras/src/saving/saving_lib.py``: ``_save_state``,
``_save_container_state``.)

**Keras 2 / legacy HDF5** (``.h5``): the group ``model_weights/<layer name>`` lists its datasets in
``get_weights`` order in the attribute ``weight_names``, each a path below that group.

rnnkit's ``params`` follow the same ``get_weights`` order (LSTM gates i, f, c, o; GRU z, r, h;
``Bidirectional`` forward then backward), so the datasets are assigned in order, shapes checked.
"""

from __future__ import annotations

from typing import Any

from rnnkit.keras_files.layer_map import CLASS_ALIASES, snake_case

RECURRENT = ("SimpleRNN", "LSTM", "GRU", "RNN")
MODELS = ("Sequential", "Functional")


def _class(entry: Any) -> str:
    name = entry.get("class_name") if isinstance(entry, dict) else None
    return CLASS_ALIASES.get(name, name) if isinstance(name, str) else "?"


def unique_name(name: str, used: dict[str, int]) -> str:
    """Keras' ``_get_unique_name``: the second ``dense`` is ``dense_1``."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def layer_groups(entry: dict, path: str) -> list[str]:
    """The ``vars`` groups of one Keras layer entry at object path ``path``, in ``get_weights`` order."""
    kind = _class(entry)
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    if kind in MODELS:
        return model_groups(config, f"{path}/layers")
    if kind in RECURRENT:
        cell = config.get("cell") if isinstance(config.get("cell"), dict) else {}
        cells = cell.get("config", {}).get("cells") if isinstance(cell.get("config"), dict) else None
        if _class(cell) == "StackedRNNCells" and isinstance(cells, list):
            used: dict[str, int] = {}            # Keras walks the list ``cells`` as a container
            return [f"{path}/cell/cells/{unique_name(snake_case(_class(c)), used)}/vars" for c in cells]
        return [f"{path}/cell/vars"]
    if kind == "Bidirectional":
        inner = config.get("layer") if isinstance(config.get("layer"), dict) else {}
        backward = config.get("backward_layer") if isinstance(config.get("backward_layer"), dict) else inner
        return layer_groups(inner, f"{path}/forward_layer") + layer_groups(backward, f"{path}/backward_layer")
    if kind == "TimeDistributed":
        inner = config.get("layer") if isinstance(config.get("layer"), dict) else {}
        return layer_groups(inner, f"{path}/layer")
    return [f"{path}/vars"]


def model_groups(config: dict, prefix: str) -> list[str]:
    """The ``vars`` groups of every layer of a model config, in the model's weight order."""
    groups: list[str] = []
    for entry, path in top_level_paths(config, prefix):
        groups.extend(layer_groups(entry, path))
    return groups


def top_level_paths(config: dict, prefix: str = "layers") -> list[tuple[dict, str]]:
    """``(layer entry, object path)`` for each layer of a Keras model config, in order."""
    used: dict[str, int] = {}
    out = []
    for entry in config.get("layers", []) if isinstance(config.get("layers"), list) else []:
        if not isinstance(entry, dict):
            continue
        name = unique_name(snake_case(_class(entry)), used)
        out.append((entry, f"{prefix}/{name}"))
    return out


def entry_name(entry: dict) -> str | None:
    """The layer name a Keras entry gives (functional entries repeat it outside the config)."""
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    name = entry.get("name", config.get("name"))
    return name if isinstance(name, str) else None


def group_datasets(group: str, datasets: dict) -> list[str] | None:
    """The dataset paths ``group/0``, ``group/1``, ... (all of the group's datasets), or None if they skip."""
    prefix = f"{group}/"
    keys = [p[len(prefix):] for p in datasets if p.startswith(prefix) and "/" not in p[len(prefix):]]
    if set(keys) != {str(i) for i in range(len(keys))}:
        return None
    return [f"{prefix}{i}" for i in range(len(keys))]
