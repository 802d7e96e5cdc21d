//! Differential evolution, SHADE and L-SHADE with benchmark functions (COMPUTE-SPEC 4).
