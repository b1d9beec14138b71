"""GPU memory, the server's side: the follower of the probe's files, the leak detector (growth,
fragmentation, cells, triage) and the one records -> verdict function, with its wording.

The probe itself (what runs inside users' kernels) is ``jupyter_gpu_panel.probe``; ``probe`` and
``protocol`` here are its old paths, kept one release with a DeprecationWarning."""
