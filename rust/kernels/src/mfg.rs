//! 1-D mean-field game solver, HJB + Fokker–Planck (COMPUTE-SPEC 5).
