# mcucompile: `make demo` and `make test` set up everything they need on a fresh Debian 12 machine:
# the apt packages (only those missing) and a .venv with the project and its test dependencies.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := gcc make cmake ninja-build gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm python3-venv chromium
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
DEMO_OUT ?= build/demo

.PHONY: all setup apt venv demo test bench fuzz clean

all: test

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

setup: apt venv

demo: setup
	$(VENV)/bin/mcucompile models/mnist/mnist_cnn.onnx --board nucleo --calib models/mnist/mnist_calib_200.npz -o $(DEMO_OUT)
	$(VENV)/bin/mcucompile verify models/mnist/mnist_cnn.onnx --board qemu-m7 --calib models/mnist/mnist_calib_200.npz \
		--data models/mnist/mnist_test_2000.npz --scale 0.00392156862745098 -n 200
	$(VENV)/bin/mcucompile bench models/mnist/mnist_cnn.onnx --board qemu-m7 --calib models/mnist/mnist_calib_200.npz

bench: setup
	$(PY) bench/run.py
	$(PY) bench/kernels.py
	$(PY) bench/patching.py
	$(PY) bench/fit_cost_model.py
	$(PY) bench/ort_qdq.py
	$(PY) bench/calibration.py
	$(PY) bench/packed_kernels.py
	$(PY) bench/quantmcu_chain.py
	$(PY) bench/quantmcu.py

# More mutants than make test runs (FUZZ_COUNT), each compiled and, when it compiles, run under ASan/UBSan.
FUZZ_COUNT ?= 2000
fuzz: setup
	$(PY) tools/fuzz.py --count $(FUZZ_COUNT)

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf build $(VENV) .pytest_cache
