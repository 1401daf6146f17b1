"""Datasets over dataset versions, label-safe augmentation, class-balanced sampling, a decode cache, epoch loaders."""

from visionloop.data.augment import AugmentPolicy, eval_transform, train_transform
from visionloop.data.cache import ImageCache
from visionloop.data.datasets import ImageDataset, LabelledItems, class_list, labelled_items
from visionloop.data.loader import EpochLoader, SeededDataset, ShuffleOrder, derive_seed
from visionloop.data.sampler import ClassBalancedOrder, imbalance_ratio

__all__ = [
    "AugmentPolicy",
    "ClassBalancedOrder",
    "EpochLoader",
    "ImageCache",
    "ImageDataset",
    "LabelledItems",
    "SeededDataset",
    "ShuffleOrder",
    "class_list",
    "derive_seed",
    "eval_transform",
    "imbalance_ratio",
    "labelled_items",
    "train_transform",
]
