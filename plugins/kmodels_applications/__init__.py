"""kmodels_applications: binary image classifiers on pretrained `keras.applications` backbones.

Registered through the `kmodels.plugins` entry point, like any third-party plugin.
"""

from kmodels_applications import models

__all__ = ["models"]
