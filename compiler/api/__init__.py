"""The public Python API, split by job: compile (compile_model), library (write_library), verify
(verify_host, verify_board), bench (bench). Errors a user can cause raise mcucompile.errors.UserError."""

from .bench import BenchResult, bench
from .compile import (
                      Compiled,
                      check_fit,
                      compile_model,
                      io_params,
                      logical_input_shape,
                      model_format,
                      pre_quantized_samples,
                      tflm_arena_bytes,
                      to_logical_shape,
)
from .library import compiled_inputs, host_runner_source, library_dir, library_files, quantize_input, write_library
from .options import CompileOptions, PatchOptions
from .verify import (
                      REFERENCES,
                      OutputComparison,
                      ReferenceCheck,
                      VerifyResult,
                      build_and_run_board,
                      choose_references,
                      compare_outputs,
                      simulate,
                      verify_board,
                      verify_host,
)

__all__ = [
    "BenchResult", "CompileOptions", "PatchOptions", "Compiled", "OutputComparison", "REFERENCES", "ReferenceCheck", "VerifyResult",
    "bench", "build_and_run_board", "check_fit", "choose_references", "compare_outputs", "compile_model",
    "compiled_inputs", "host_runner_source", "io_params", "library_dir", "library_files", "logical_input_shape",
    "model_format", "pre_quantized_samples", "quantize_input", "simulate", "tflm_arena_bytes",
    "to_logical_shape", "verify_board", "verify_host", "write_library",
]
