"""BEMSeg benchmark suite: image-text semantic segmentation of remote sensing images.

Importing the package is cheap (no torch): models are imported on first use of the registry.
"""

from bemseg.registry import create_model, declared_models, list_models, register_model

__version__ = "0.1.0"
__all__ = ["__version__", "create_model", "declared_models", "list_models", "register_model"]
