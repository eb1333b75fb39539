"""Keras compile settings (optimizer, loss, metrics) to rnnkit's ``compile`` arguments and back.

Keras 3 keeps them in ``config.json``'s ``compile_config``; Keras 2 / legacy HDF5 in the attribute
``training_config`` (with ``optimizer_config``). Optimizers, losses and metrics are looked up by class
name in rnnkit's own registries; optimizer settings rnnkit lacks are accepted only at the values
that change nothing (``HARMLESS_OPTIMIZER``), anything else is a problem reported with the file.
"""

from __future__ import annotations

from typing import Any

from rnnkit import losses as losses_module
from rnnkit import metrics as metrics_module
from rnnkit import optimizers
from rnnkit.keras_files.layer_map import accepted_arguments, camel_case, snake_case

#: Keras optimizer settings rnnkit has no counterpart for, with the values that make them do nothing
HARMLESS_OPTIMIZER: dict[str, tuple] = {
    "name": (), "weight_decay": (None, 0, 0.0), "use_ema": (False,), "ema_momentum": (),
    "ema_overwrite_frequency": (None,), "loss_scale_factor": (None,), "gradient_accumulation_steps": (None,),
    "is_legacy_optimizer": (False,), "jit_compile": (), "decay": (0, 0.0),
}
#: Keras compile settings that do not change what training computes
HARMLESS_COMPILE = ("weighted_metrics", "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss",
                    "optimizer_config", "optimizer", "loss", "loss_weights", "metrics", "sample_weight_mode")


def _optimizer(config: Any, problem) -> Any:
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        problem(f"optimizer {str(config)[:60]} is not {{'class_name', 'config'}}")
        return None
    name = snake_case(config["class_name"]).replace("_", "")
    table = {n.replace("_", ""): n for n in ("sgd", "adam", "rmsprop", "adagrad")}
    if name not in table:
        problem(f"optimizer {config['class_name'][:40]!r} is not one of rnnkit's {sorted(table.values())}")
        return None
    settings = config.get("config", {}) if isinstance(config.get("config", {}), dict) else {}
    cls = optimizers.get(table[name]).__class__
    accepted = accepted_arguments(cls) | {"clipnorm", "clipvalue", "global_clipnorm"}
    kwargs = {}
    for key, value in settings.items():
        key = "learning_rate" if key == "lr" else key          # Keras 2's old name
        if key in accepted and value is not None:
            kwargs[key] = value
        elif key in accepted or (key in HARMLESS_OPTIMIZER and (not HARMLESS_OPTIMIZER[key]
                                                                or value in HARMLESS_OPTIMIZER[key])):
            continue
        else:
            problem(f"optimizer setting {key}={str(value)[:60]} is not supported by rnnkit")
    if isinstance(kwargs.get("learning_rate"), dict):
        problem("a learning-rate schedule is not supported by rnnkit")
        kwargs.pop("learning_rate")
    try:
        return optimizers.deserialize({"class_name": table[name], "config": kwargs})
    except (TypeError, ValueError) as exc:
        problem(f"optimizer settings are invalid ({exc})")
        return None


def _named(value: Any, kind: str, problem) -> Any:
    """A loss or metric: a name stays a name; a Keras object config becomes rnnkit's, unknown keys dropped."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_named(v, kind, problem) for v in value]
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        module = losses_module if kind == "loss" else metrics_module
        cls_name = value["class_name"]
        table = {c.__name__: c for c in (module._CLASSES if kind == "loss" else module._TABLE.values())}
        cls = table.get(cls_name) or table.get(camel_case(cls_name))
        if cls is None:
            problem(f"{kind} {cls_name[:40]!r} is not one of rnnkit's {sorted(table)}")
            return None
        settings = value.get("config", {}) if isinstance(value.get("config"), dict) else {}
        keep = accepted_arguments(cls)
        for key, setting in settings.items():
            if key not in keep and not (key == "dtype" or (key == "axis" and setting == -1)):
                problem(f"{kind} {cls_name[:40]!r} setting {key}={str(setting)[:60]} is not supported by rnnkit")
        obj = {"class_name": cls_name, "config": {k: v for k, v in settings.items() if k in keep}}
        try:
            return (losses_module if kind == "loss" else metrics_module).deserialize(obj)
        except (TypeError, ValueError) as exc:
            problem(f"{kind} {cls_name[:40]!r} is invalid ({exc})")
            return None
    if isinstance(value, dict):
        return {str(k): _named(v, kind, problem) for k, v in value.items()}
    problem(f"{kind} {str(value)[:60]} is not a name or a config")
    return None


def compile_arguments(config: Any, problems: list[str]) -> dict | None:
    """``compile``'s keyword arguments from a Keras compile config (None when the model was not compiled)."""
    if not isinstance(config, dict) or not config:
        return None

    def problem(reason: str) -> None:
        problems.append(f"compile settings: {reason}")

    optimizer = _optimizer(config.get("optimizer", config.get("optimizer_config")), problem)
    loss = _named(config.get("loss"), "loss", problem)
    metrics = _named(config.get("metrics"), "metric", problem)
    loss_weights = config.get("loss_weights")
    if config.get("weighted_metrics"):
        problem("weighted_metrics are not supported by rnnkit")
    if config.get("loss") is None:
        problem("no loss is given")
    return {"optimizer": optimizer, "loss": loss, "metrics": metrics, "loss_weights": loss_weights}


# -- rnnkit -> Keras -------------------------------------------------------------------------------

def _keras_object(module: str, class_name: str, config: dict) -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def keras_compile_config(model) -> dict:
    """Keras 3's ``compile_config`` for a compiled rnnkit model (``{}`` when not compiled)."""
    if not model.compiled:
        return {}
    opt = model.optimizer
    settings = {"name": opt.name, **opt.get_config(), "weight_decay": None, "use_ema": False, "ema_momentum": 0.99,
                "ema_overwrite_frequency": None, "loss_scale_factor": None, "gradient_accumulation_steps": None}
    class_name = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad"}[opt.name]
    args = model._compile_args

    def encode(value: Any, module: str) -> Any:
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        if isinstance(value, (list, tuple)):
            return [encode(v, module) for v in value]
        if isinstance(value, dict):
            return {str(k): encode(v, module) for k, v in value.items()}
        if isinstance(value, losses_module.Loss):
            return _keras_object(module, type(value).__name__, {"name": value.name, **value.get_config()})
        if isinstance(value, metrics_module.Metric):
            return _keras_object(module, type(value).__name__, value.get_config())
        raise TypeError(f"cannot write a compile argument of type {type(value).__name__} to a Keras file")

    return {"optimizer": _keras_object("keras.optimizers", class_name, settings),
            "loss": encode(args["loss"], "keras.losses"), "loss_weights": encode(args["loss_weights"], "keras.losses"),
            "metrics": encode(args["metrics"], "keras.metrics"), "weighted_metrics": None, "run_eagerly": False,
            "steps_per_execution": 1, "jit_compile": False}
