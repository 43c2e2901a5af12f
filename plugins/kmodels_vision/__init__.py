"""kmodels_vision: the dog_cat task, CNNs and synthetic photos.

Registered through the `kmodels.plugins` entry point, like any third-party plugin.
"""

from kmodels_vision import data, models, task

__all__ = ["data", "models", "task"]
