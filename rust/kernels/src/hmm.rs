//! Gaussian hidden Markov model: EM, Viterbi, restarts (COMPUTE-SPEC 1).
