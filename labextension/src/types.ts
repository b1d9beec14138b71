/**
 * Shapes of the server's REST and stream payloads (api/gpu-panel/...): names
 * for the types generated from the API contract,
 * ../jupyter_gpu_panel/api/openapi.json -> src/api-schema.ts (`jlpm gen:types`).
 * A field changes in the contract, not here.
 *
 * Every reading may be null: a card that does not support a query reports
 * null, and the UI must show "n/a" instead of failing.
 */
import { components } from './api-schema';

type Schemas = components['schemas'];

export type SourceState = Schemas['SourceState'];

/** GET status; also the stream's hello. */
export type IStatus = Schemas['Status'];

/** GET devices: static facts per GPU. */
export type IDeviceInfo = Schemas['Device'];

export type IProcessReading = Schemas['Process'];

/** One GPU at one instant. */
export type IGpuReading = Schemas['GPU'];

export type ISnapshot = Schemas['Snapshot'];

/** GET history: columnar, one entry per GPU, ready for uPlot. */
export type IHistoryResponse = Schemas['History'];

/** A field `GET history` keeps (each is also a numeric field of a GPU reading). */
export type HistoryField = Schemas['HistoryField'];

/** The OOM forecast as a straight line, from now to where memory runs out. */
export type ILeakForecast = NonNullable<Schemas['Forecast']>;

/** From the probe's steps (source "steps") or NVML's memory over time ("nvml"). */
export type ILeakVerdict = NonNullable<Schemas['LeakVerdict']>;

/** A CUDA out-of-memory failure that ended a probed run (a steps verdict's `oom`). */
export type IOomReport = Schemas['OomReport'];

/** One allocation-history recording of a probe ("Find the leaking line"). */
export type ITriage = NonNullable<Schemas['Triage']>;

/** The in-kernel (or in-script) memory probe. */
export type IProbeInfo = NonNullable<Schemas['Probe']>;

/** GET kernels. */
export type IKernelsReply = Schemas['Kernels'];

export type IKernelInfo = Schemas['Kernel'];

/** POST kernels/{id}/probe: the kernel's answer (ok: the probe runs; queued: after the running cell). */
export type IProbeLoaded = Schemas['ProbeLoaded'];

/** A kernel's idle state: idle past `idle_after` while holding GPU memory makes it an idle holder. */
export type IIdleInfo = Schemas['Idle'];

/** A kernel the server shut down for sitting idle on GPU memory (GET kernels `culled`, newest last). */
export type ICulledKernel = Schemas['Culled'];

/** POST kernels/{id}/release: torch's cache emptied (ok), or the kernel did not answer as expected. */
export type IReleaseReply = Schemas['Released'] | Schemas['ReleaseFailed'];

/** POST kernels/{id}/triage, POST probes/{pid}/triage: 202, recording the next `steps` steps. */
export type ITriageRequested =
  Schemas['KernelTriageRequested'] | Schemas['ProbeTriageRequested'];

/**
 * A process outside any kernel (a training script, a torchrun rank started
 * from a terminal) that runs the memory probe.
 */
export type IScriptInfo = Schemas['Script'];

/**
 * What a kernel row and a script row both chart: the probe's steps, the
 * leak verdict, and (kernels only) NVML memory over time.
 */
export type IMemorySubject = Pick<IScriptInfo, 'probe' | 'leak'> &
  Partial<Pick<IKernelInfo, 'history'>>;

export type IBenchmarkTemplate = Schemas['Templates']['templates'][number];

/** What the server sends on the stream socket: hello, snapshot, kernels, config, error. */
export type StreamMessage = Schemas['StreamMessage'];

/** What the client sends on the stream socket. */
export type StreamRequest = Schemas['StreamRequest'];
