"""The cluster view: every node and GPU that Prometheus knows (DCGM exporter series and/or this
project's own), with who holds each GPU. ``promql`` holds the queries, ``view`` the pure join,
``service`` the cached, asynchronous fetch behind ``GET cluster``."""
