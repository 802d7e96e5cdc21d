"""HFThot engine: market data, analytics and the Rust kernels. Never imports streamlit."""

from importlib import metadata

try:
    __version__ = metadata.version("hfthot")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["MarketStore", "QueryRejected", "SqlExplorer", "__version__"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from core.data.store import MarketStore
    from core.errors import QueryRejected
    from core.sql import SqlExplorer


def __getattr__(name: str) -> object:
    # Lazy, so `import core` stays cheap for the CLI and pages that need none of these.
    if name == "MarketStore":
        from core.data.store import MarketStore

        return MarketStore
    if name == "SqlExplorer":
        from core.sql import SqlExplorer

        return SqlExplorer
    if name == "QueryRejected":
        from core.errors import QueryRejected

        return QueryRejected
    raise AttributeError(f"module 'core' has no attribute {name!r}")
