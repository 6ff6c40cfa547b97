"""The build report: what the compiler did, as data (``data.py``) and as one static page
(``html.py``, with pictures from ``svg.py``, ``graph.py`` and ``placement.py``)."""

REPORT_FILE = "report.html"
SIMULATED_FILE = "simulated.json"
