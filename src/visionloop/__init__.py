"""visionloop: from raw images to a deployed image recognition system that keeps improving."""

__version__ = "0.1.0"
__all__ = ["__version__"]
