"""The node agent: first-boot provisioning and status, run ON the cluster nodes.

Python standard library only, and nothing from the build side: on a node this
package lives alone under /usr/lib/cluster-agent (see tests/node/test_purity.py).
"""
