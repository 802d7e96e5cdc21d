"""HFThot engine: market data, analytics and the Rust kernels. Never imports streamlit."""

from importlib import metadata

try:
    __version__ = metadata.version("hfthot")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
