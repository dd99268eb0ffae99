"""Measuring FastV: FLOPs (paper Eq. 5 and an exact count) and wall-clock / memory benchmarks."""

from fastv.measure.bench import BenchResult, bench
from fastv.measure.flops import FlopsReport, eq5_layer, eq5_ratio, flops, kv_cache_bytes
from fastv.measure.presets import PRESETS, Layout, Preset, get_preset
from fastv.measure.shapes import TextShape, VisionShape, text_shape, vision_shape

__all__ = [
    "PRESETS",
    "BenchResult",
    "FlopsReport",
    "Layout",
    "Preset",
    "TextShape",
    "VisionShape",
    "bench",
    "eq5_layer",
    "eq5_ratio",
    "flops",
    "get_preset",
    "kv_cache_bytes",
    "text_shape",
    "vision_shape",
]
