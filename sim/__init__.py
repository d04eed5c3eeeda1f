"""pnetsim: discrete-event simulation of treatment pathways in metastatic pancreatic NET.

Data flow (one way): evidence -> fitted parameters -> therapies & cohorts -> engine ->
event records -> outcomes -> economics -> reports.
"""

__version__ = "0.1.0"
