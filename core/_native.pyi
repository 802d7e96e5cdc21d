# Type stub for the Rust extension built from rust/py. Keep in step with it.
# Arrays are float64 numpy arrays; returned arrays are owned by numpy (no copy).

import numpy as np
from numpy.typing import NDArray

__version__: str
BUILD_PROFILE: str

class NumericalError(RuntimeError): ...
class CancelledError(RuntimeError): ...

# --- series ---
def log_returns(prices: NDArray[np.float64]) -> NDArray[np.float64]: ...
def rolling_zscore(x: NDArray[np.float64], window: int) -> NDArray[np.float64]: ...

# Each domain below is owned by one module of rust/py; add its stubs under its marker.
# --- hmm ---

# --- optimize ---

# --- chiarella ---

# --- meanrev ---

# --- backtest ---

# --- mfg ---

# --- cache ---
