"""The CSL language and the Cerebras machine, shared by the csl backend (which prints programs)
and the fabric simulator (which parses and runs them): the program model and the WSE figures."""
