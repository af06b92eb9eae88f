"""builder: zero-touch two-node HA appliances from one YAML profile.

Kept import-free on purpose: the node agent ships as `builder.node` in a private
library path on every node, and must not drag in the build side.
"""

__version__ = "0.1.0"
