"""Region features: pooling, mean injection and ViT-compatible region descriptors."""

from .mean_injection import block_mean_image, mean_injection
from .region import (RegionDescriptors, bounding_boxes, gradient_histogram, positional_histogram,
                     region_features, sample_regions)

__all__ = ["mean_injection", "block_mean_image", "region_features", "RegionDescriptors",
           "bounding_boxes", "sample_regions", "positional_histogram", "gradient_histogram"]
