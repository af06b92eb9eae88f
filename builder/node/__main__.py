"""`python3 -m builder.node`: what /usr/sbin/clusterctl runs."""

from builder.node.cli import main

raise SystemExit(main())
