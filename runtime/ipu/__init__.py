"""kernelc's IPU model: a C++ implementation of the Poplar API subset kernelc emits (include/,
src/), against which the emitted codelets.cpp and main.cpp are compiled by the system g++ and
run (runner.py)."""
