"""Backbones that torchvision's ResNets do not cover; importing this package registers them."""
from archs import mobilenet_v2  # noqa: F401
