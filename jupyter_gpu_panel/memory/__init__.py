"""GPU memory: the in-kernel probe and its protocol, the server-side follower, the leak detector
(growth, fragmentation, cells, triage) and the one records -> verdict function, with its wording.

Importing this package imports nothing heavy: the probe runs inside user kernels."""
