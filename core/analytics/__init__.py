"""Analytics façades over the Rust kernels: validate input, raise clear errors, return results."""
