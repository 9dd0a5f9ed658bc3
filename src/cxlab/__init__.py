"""cxlab: a research workbench for corrective-exercise science.

The pipeline, one module per step: :mod:`cxlab.io` (readers) →
:mod:`cxlab.store` (Parquet tables) → :mod:`cxlab.features` →
:mod:`cxlab.models` → :mod:`cxlab.experiments` → :mod:`cxlab.report`.
"""

from importlib.metadata import PackageNotFoundError, version

from cxlab._check import ConfigError, CxlabError, CxlabWarning, InputFormatError, SchemaError
from cxlab.store import Store

try:
    __version__ = version("cxlab")
except PackageNotFoundError:  # pragma: no cover
    __version__ = "0+unknown"

__all__ = [
    "ConfigError",
    "CxlabError",
    "CxlabWarning",
    "InputFormatError",
    "SchemaError",
    "Store",
    "__version__",
]
