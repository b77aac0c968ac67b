#!/usr/bin/env python3
"""Make the small .tflite files the bad-input tests expect to be refused (needs TensorFlow; run once,
the outputs are committed): an int16-activation model (16x8 quantization) and an LSTM."""

from pathlib import Path

import numpy as np
import tensorflow as tf

OUT = Path(__file__).parent
tf.keras.utils.set_random_seed(0)


def rep(shape):
    def gen():
        rng = np.random.default_rng(0)
        for _ in range(16):
            yield [rng.standard_normal((1,) + shape).astype(np.float32)]
    return gen


def convert(model, shape, int16=False, lstm=False):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if lstm:
        # any quantized LSTM conversion crashes this TensorFlow (2.21); a float LSTM still carries the
        # UNIDIRECTIONAL_SEQUENCE_LSTM op, which is what the test needs refused
        return conv.convert()
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep(shape)
    if int16:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = tf.int16
        conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


cnn = tf.keras.Sequential([tf.keras.Input((8, 8, 1)), tf.keras.layers.Conv2D(4, 3, activation="relu"),
                           tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(3)])
(OUT / "int16_activations.tflite").write_bytes(convert(cnn, (8, 8, 1), int16=True))
lstm = tf.keras.Sequential([tf.keras.Input((6, 4), batch_size=1), tf.keras.layers.LSTM(5), tf.keras.layers.Dense(2)])
(OUT / "lstm.tflite").write_bytes(convert(lstm, (6, 4), lstm=True))
print("wrote", sorted(p.name for p in OUT.glob("*.tflite")))
