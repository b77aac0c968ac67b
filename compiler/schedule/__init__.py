"""What runs, in order, once planning is done: the plan's memory-safety check (and, next, the typed
schedule that codegen, the simulators and the report consume). It sits above patch/ and memory/."""
