/**
 * Shapes of the server's REST/WS payloads (api/gpu-panel/...).
 *
 * Every numeric field may be null: a card that does not support a query
 * reports null, and the UI must show "n/a" instead of failing.
 */

export type SourceState =
  | 'ok'
  | 'nvml-missing'
  | 'driver-not-loaded'
  | 'no-devices'
  | 'error';

export type GpuState = 'ok' | 'lost' | 'unresponsive' | 'error';

export interface ISamplerStatus {
  running: boolean;
  ticks: number;
  last_tick: number | null;
  tick_ms: number | null;
  errors: number;
  last_error: string | null;
}

export interface IStatus {
  version: string;
  source: 'nvml' | 'replay' | string;
  state: SourceState | string;
  message: string | null;
  driver_version: string | null;
  cuda_driver_version: string | null;
  nvml_version: string | null;
  interval: number;
  min_interval: number;
  slow_interval?: number;
  history_seconds: number;
  replay_file: string | null;
  sampler?: ISamplerStatus;
  /** OS user the server runs as (optional: used to tell "my" processes). */
  user?: string | null;
}

export interface IDeviceInfo {
  index: number;
  name: string | null;
  uuid: string | null;
  pci_bus_id?: string | null;
  memory_total: number | null;
  power_limit_mw: number | null;
  clock_sm_max: number | null;
  clock_mem_max: number | null;
  [key: string]: unknown;
}

export interface IKernelOwner {
  kind: 'kernel';
  kernel_id: string;
  kernel_name: string | null;
  notebook: string | null;
  user?: string | null;
}

export interface IOtherOwner {
  kind: 'terminal' | 'process' | string;
  [key: string]: unknown;
}

export type ProcessOwner = IKernelOwner | IOtherOwner;

export interface IProcessReading {
  pid: number;
  gpu: number;
  used: number | null;
  type?: string | null;
  name: string | null;
  command: string | null;
  user: string | null;
  owner: ProcessOwner | null;
}

export interface IGpuReading {
  index: number;
  t: number;
  state: GpuState | string;
  error: string | null;
  util_gpu: number | null;
  util_mem: number | null;
  mem_total: number | null;
  mem_used: number | null;
  mem_free: number | null;
  mem_reserved: number | null;
  temp_c: number | null;
  power_mw: number | null;
  power_limit_mw: number | null;
  clock_sm: number | null;
  clock_mem: number | null;
  pstate: number | null;
  throttle_reasons: string[] | null;
  fan_pct: number | null;
  pcie_tx_kbps: number | null;
  pcie_rx_kbps: number | null;
  pcie_gen?: number | null;
  pcie_width?: number | null;
  processes: IProcessReading[];
  [key: string]: unknown;
}

export interface ISnapshot {
  t: number;
  source: string;
  state: string;
  message: string | null;
  gpus: IGpuReading[];
}

/** Columnar history, one entry per GPU, ready for uPlot. */
export interface IHistoryResponse {
  now: number;
  fields: string[];
  gpus: Array<{
    index: number;
    t: number[];
    values: { [field: string]: Array<number | null> };
  }>;
  processes?: Array<{ gpu: number; pid: number; t: number[]; used: number[] }>;
}

export type StreamMessage =
  | { type: 'hello'; status: IStatus }
  | { type: 'snapshot'; snapshot: ISnapshot }
  | { type: 'config'; interval: number; fields?: string[] }
  | { type: 'error'; message: string };

/** The OOM forecast as a straight line, from now to where memory runs out. */
export interface ILeakForecast {
  /** "step": x is the optimizer step; "time": x is unix seconds. */
  axis: 'step' | 'time' | string;
  x0: number;
  /** Bytes. */
  y0: number;
  x1: number;
  y1: number;
}

export interface ILeakVerdict {
  leak: boolean;
  actionable: boolean;
  bytes_per_second: number | null;
  seconds_to_oom: number | null;
  steps_to_oom: number | null;
  message: string | null;
  source?: 'steps' | 'nvml' | string;
  bytes_per_step?: number | null;
  current_step?: number | null;
  /** Bytes usable by the kernel, when known. */
  capacity?: number | null;
  level?: number | null;
  forecast?: ILeakForecast | null;
  [key: string]: unknown;
}

/** NVML memory of a kernel's processes, summed, over time. */
export interface IKernelHistory {
  /** Unix seconds. */
  t: number[];
  /** Bytes. */
  used: number[];
}

/** The probe's per-step memory, downsampled by the server (<= 600 points). */
export interface IProbeSeries {
  step: number[];
  /** Bytes. */
  allocated: number[];
  /** Bytes. */
  reserved: number[];
}

export interface IProbeAdvice {
  message: string | null;
  [key: string]: unknown;
}

export interface IFragmentation extends IProbeAdvice {
  fragmented: boolean;
}

/** One allocation site that grew during a triage recording. */
export interface ITriageStack {
  /** "leaky.ipynb:12 <module>". */
  where: string;
  code: string | null;
  bytes: number;
  bytes_per_step: number;
  count: number;
  every_step: boolean;
}

export interface ITriage {
  state: 'requested' | 'done' | 'error' | string;
  requested_at: number | null;
  t: number | null;
  /** Steps recorded (or to record). */
  steps: number;
  message: string | null;
  stacks: ITriageStack[];
  error: string | null;
  /** True when the server started it on its own at the alarm. */
  auto: boolean;
}

/** The in-kernel memory probe. Every field is optional: older servers send fewer. */
export interface IProbeInfo {
  pid?: number;
  kernel_id?: string;
  device?: number | null;
  /** Bytes usable. */
  limit?: number | null;
  steps?: number;
  last?: { [key: string]: unknown } | null;
  alive?: boolean;
  series?: IProbeSeries | null;
  cells?: IProbeAdvice | null;
  fragmentation?: IFragmentation | null;
  triage?: ITriage | null;
  [key: string]: unknown;
}

export interface IKernelInfo {
  kernel_id: string;
  kernel_name: string | null;
  notebook: string | null;
  execution_state: string | null;
  user?: string | null;
  pid?: number | null;
  pids: number[];
  memory: { [gpu: string]: number };
  history?: IKernelHistory | null;
  probe: IProbeInfo | null;
  leak: ILeakVerdict | null;
}

/**
 * What a kernel row and a script row both chart: the probe's steps, the
 * leak verdict, and (kernels only) NVML memory over time.
 */
export interface IMemorySubject {
  probe: IProbeInfo | null;
  leak: ILeakVerdict | null;
  history?: IKernelHistory | null;
}

/**
 * A process outside any kernel (a training script, a torchrun rank started
 * from a terminal) that runs the memory probe.
 */
export interface IScriptInfo {
  pid: number;
  /** The script's command line, its first items: ["train.py", "--epochs", "3"]. */
  argv: string[];
  /** torchrun's RANK, when set. */
  rank: string | null;
  /** Who started it, as in the process table. */
  owner: ProcessOwner | null;
  probe: IProbeInfo | null;
  leak: ILeakVerdict | null;
}

/** GET api/gpu-panel/kernels. `scripts` is missing on older servers. */
export interface IKernelsReply {
  kernels: IKernelInfo[];
  scripts?: IScriptInfo[];
}

export interface IBenchmarkTemplate {
  name: string;
  title: string;
  description: string;
}
