"""PAN's backbones; importing this package registers each in :mod:`ops.backbone_registry`."""
from archs import mobilenet_v2, resnet  # noqa: F401
