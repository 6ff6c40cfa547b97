"""Random well-typed programs for differential testing (issue 14): DSL kernels and graphs
(``fuzz.dsl``), OpenMP C programs (``fuzz.omp``), and the differential check that runs them on
every registered target against the reference (``fuzz.differential``)."""
