"""Golden references outside our own code: onnxruntime (float / QDQ), TFLite Micro and LiteRT (int8)."""
