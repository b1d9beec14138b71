"""Which kernel, notebook and user hold each GPU process, and the per-kernel view (the tracker)."""
