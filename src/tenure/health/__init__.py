"""Health: models as code (components, scales, variants, bands) that turn signals into a score."""

from tenure.health.model import (
    ATTRIBUTES,
    BASE,
    MISSING_INPUTS,
    NEUTRAL_SCORE,
    Bands,
    Component,
    Curve,
    HealthModel,
    Input,
    ModelError,
    Scale,
    Thresholds,
    Variant,
    default_model,
    load_model,
    parse_model,
)

__all__ = [
    "ATTRIBUTES",
    "BASE",
    "MISSING_INPUTS",
    "NEUTRAL_SCORE",
    "Bands",
    "Component",
    "Curve",
    "HealthModel",
    "Input",
    "ModelError",
    "Scale",
    "Thresholds",
    "Variant",
    "default_model",
    "load_model",
    "parse_model",
]
