"""The protocol language: schema, loading with located errors, sandboxed templates."""

from .load import Loaded, Problem, ProtocolError, load, load_models
from .models_file import BUILTIN_ALIASES, ModelAlias, resolve_model
from .schema import Condition, Offer, Open, Protocol, Repeat, Say, Step, Stop

__all__ = [
    "BUILTIN_ALIASES",
    "Condition",
    "Loaded",
    "ModelAlias",
    "Offer",
    "Open",
    "Problem",
    "Protocol",
    "ProtocolError",
    "Repeat",
    "Say",
    "Step",
    "Stop",
    "load",
    "load_models",
    "resolve_model",
]
