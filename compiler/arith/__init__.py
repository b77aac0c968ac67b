"""Integer arithmetic with TFLite's semantics (fixed-point multipliers, rounding, the integer algorithms
of TFLite Micro's LOGISTIC/TANH/HARD_SWISH/MEAN...). It sits below ops/: ops use it, it uses nothing of
the compiler."""
