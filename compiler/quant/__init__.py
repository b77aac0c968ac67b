"""Calibration, int8 quantization with TFLite's integer scheme, and the bit-exact numpy simulator."""
