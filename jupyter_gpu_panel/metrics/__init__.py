"""GPU readings: typed readings, sources (NVML, replay), the one sampler thread, history ring
buffers, stream fan-out and process descriptions. Data flows NVML -> sampler -> history -> API."""
