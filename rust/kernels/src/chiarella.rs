//! Franke–Westerhoff / Chiarella agent model, stylized facts and MSM (COMPUTE-SPEC 2).
