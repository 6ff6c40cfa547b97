"""The tsp emulator: runs kernelc's emitted Groq API programs (program.py, run.py) on NumPy.

It answers ``import groq.api`` and ``from groq.runner import tsp`` only while it runs an emitted
file (``loader.groq_modules``); no top-level ``groq`` package is ever installed. It imports
nothing outside this folder but NumPy.
"""
