"""``python -m kernelc`` is the ``kernelc`` command."""

import sys

from kernelc.cli import main

sys.exit(main())
