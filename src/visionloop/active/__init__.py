"""The AI management loop: samplers of production traffic, active learning, retrain-and-compare, drift.

Modules are imported by name (``visionloop.active.samplers``, ``visionloop.active.drift``, ...); this package
imports nothing itself, so the torch-free model server can use its pure modules.
"""
