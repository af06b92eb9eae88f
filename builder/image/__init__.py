"""The image stage: a profile and the cluster .deb -> bootable node disk images (mkosi).

    from builder.image import build_image, Stages
    build_image(profile, [deb], out_dir, "all", cache_dir=None, node=None, progress=Stages())
"""

from builder.image.build import FORMATS, build_image, default_cache_dir, parse_formats
from builder.image.mkosi_tool import MkosiTool, find_mkosi
from builder.image.progress import Stages

__all__ = [
    "FORMATS",
    "MkosiTool",
    "Stages",
    "build_image",
    "default_cache_dir",
    "find_mkosi",
    "parse_formats",
]
