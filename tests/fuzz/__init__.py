"""Deterministic model fuzzer for mcucompile: seed models, their mutants, and a crash-proof runner.

``mutate`` makes mutants (bytes and structure, through the onnx API and the TFLite flatbuffer object
API); ``seeds`` lists and builds the seed models; ``runner`` compiles each mutant through the command
line's ``main`` in a worker process and checks the contract (exit 0 or 2, one error line, no partial
output; every compiled mutant runs bit-exact under ASan/UBSan). ``tools/fuzz.py`` and
``tests/test_fuzz.py`` drive it.
"""
