"""Trainer parameters and the functional parameters they build agree on their defaults.

A trainer's attrs parameter class (``plastic.learn``) restates the defaults of
the functional rule it calls (``plastic.functional``) so that both read as
documented classes; ``rule()`` converts one into the other. This checks, for
every such class in ``plastic.learn``, that the trainer's defaults, converted,
are the functional class's own defaults: a default changed on one side only
fails here, naming the field.
"""

from __future__ import annotations

import importlib
import pkgutil

import attrs
import pytest

import plastic.learn


def _rule_param_classes() -> list[type]:
    found = []
    for module_info in pkgutil.iter_modules(plastic.learn.__path__):
        module = importlib.import_module(f"plastic.learn.{module_info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and attrs.has(value)
                and callable(getattr(value, "rule", None))
            ):
                found.append(value)
    return sorted(found, key=lambda cls: cls.__qualname__)


RULE_PARAM_CLASSES = _rule_param_classes()


def test_the_discovery_finds_the_known_rules() -> None:
    names = {cls.__name__ for cls in RULE_PARAM_CLASSES}
    assert {"TripletSTDPParams", "ClopathSTDPParams", "RmaxParams", "IntegerSTDPParams", "MSTDPETParams"} <= names


@pytest.mark.parametrize("params_class", RULE_PARAM_CLASSES, ids=lambda cls: cls.__name__)
def test_trainer_defaults_are_the_functional_defaults(params_class: type) -> None:
    converted = params_class().rule()
    functional_defaults = type(converted)()
    differing = {
        field.name: (getattr(converted, field.name), getattr(functional_defaults, field.name))
        for field in attrs.fields(type(converted))
        if getattr(converted, field.name) != getattr(functional_defaults, field.name)
    }
    assert not differing, f"{params_class.__name__} vs {type(converted).__name__} (trainer, functional): {differing}"
