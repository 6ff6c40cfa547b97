"""The kernelc version, in a module of its own so that emitters can print it without
importing the package (whose __init__ imports the API, which imports them)."""

VERSION = "0.1.0"
