"""The ``poplar`` target: Poplar C++ (codelets and host program) for Graphcore IPUs."""
