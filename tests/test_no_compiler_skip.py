"""Without a C++ compiler, tests that run a poplar program are skipped saying why (conftest.py);
other failures stay failures."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parent / "conftest.py").read_text()


def test_the_missing_compiler_error_is_a_skip_and_others_still_fail(pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_sample="""
        from kernelc.diagnostics import KernelcError, Span

        def test_needs_gxx():
            raise KernelcError(
                "the poplar target's IPU model compiles the emitted C++ with 'g++', which is not "
                "installed (set CXX or install g++); 'kernelc build --target poplar' works "
                "without it",
                Span("<command line>", 1, 1),
            )

        def test_other_failure():
            raise KernelcError("something else", Span("<command line>", 1, 1))
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(["*C++ with g++ (or $CXX), which is not installed*"])
