"""The one place that imports private scikit-learn helpers.

A scikit-learn release that moves them should only touch this file.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._set_output import _get_container_adapter
from sklearn.utils.validation import _get_feature_names, check_is_fitted, validate_data

__all__ = [
    "Interval",
    "StrOptions",
    "_fit_context",
    "_get_container_adapter",
    "_get_feature_names",
    "check_is_fitted",
    "validate_data",
]
