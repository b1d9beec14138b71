/**
 * Complete payloads as the contract (src/api-schema.ts) describes them, for
 * the tests: each factory fills every required field, the test overrides the
 * ones it is about. Not a test file itself (jest runs *.spec.ts only).
 */
import {
  IGpuReading,
  IKernelInfo,
  ILeakVerdict,
  IProbeInfo,
  IScriptInfo,
  IStatus,
  ITriage
} from '../src/types';

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;

export type StepsVerdict = Extract<ILeakVerdict, { source: 'steps' }>;
export type NvmlVerdict = Extract<ILeakVerdict, { source: 'nvml' }>;

export function status(partial: Partial<IStatus> = {}): IStatus {
  return {
    version: '0',
    source: 'nvml',
    state: 'ok',
    message: null,
    driver_version: '580',
    cuda_driver_version: '13.0',
    nvml_version: '13',
    replay_file: null,
    interval: 1,
    min_interval: 0.1,
    slow_interval: 5,
    history_seconds: 3600,
    history_bytes: 0,
    sampler: {
      running: true,
      ticks: 1,
      reads: 1,
      last_tick: 1,
      tick_ms: 1,
      errors: 0,
      last_error: null
    },
    cluster_configured: false,
    ...partial
  };
}

/** A GPU reading with every optional reading null (a card that supports none). */
export function gpu(partial: Partial<IGpuReading> = {}): IGpuReading {
  return {
    index: 0,
    t: 1,
    state: 'ok',
    error: null,
    util_gpu: null,
    util_mem: null,
    mem_total: null,
    mem_used: null,
    mem_free: null,
    mem_reserved: null,
    temp_c: null,
    power_mw: null,
    power_limit_mw: null,
    clock_sm: null,
    clock_mem: null,
    pstate: null,
    throttle_reasons: null,
    fan_pct: null,
    pcie_tx_kbps: null,
    pcie_rx_kbps: null,
    processes: [],
    ...partial
  };
}

/** An actionable leak seen by the probe: 32 MiB a step, out of memory in 70 s. */
export function stepsVerdict(
  partial: Partial<StepsVerdict> = {}
): StepsVerdict {
  return {
    source: 'steps',
    leak: true,
    actionable: true,
    reason: 'growing',
    headroom: null,
    capacity: null,
    level: null,
    message: 'Leaking 32 MiB a step, full in ~70 s, around step 2,508.',
    forecast: null,
    onset_step: 0,
    bytes_per_step: 32 * MiB,
    bytes_per_second: 32 * MiB,
    steps_to_oom: 2408,
    seconds_to_oom: 70,
    evidence_steps: 100,
    required_steps: null,
    fragmentation: null,
    current_step: 100,
    skipped: 0,
    capacity_note: null,
    headroom_bound: 'capacity',
    steps_per_iteration: null,
    step_source: 'optimizer',
    state: 'running',
    oom: null,
    ...partial
  };
}

/** An actionable leak seen in NVML's memory over time: 1 MB/s, out of memory in 10 min. */
export function nvmlVerdict(partial: Partial<NvmlVerdict> = {}): NvmlVerdict {
  return {
    source: 'nvml',
    leak: true,
    actionable: true,
    reason: 'growing',
    headroom: null,
    capacity: null,
    level: null,
    message: 'grows',
    forecast: null,
    onset_time: null,
    bytes_per_second: 1e6,
    seconds_to_oom: 600,
    evidence_samples: 30,
    required_samples: null,
    headroom_bound: 'device free',
    ...partial
  };
}

export function triage(partial: Partial<ITriage> = {}): ITriage {
  return {
    state: 'done',
    requested_at: 1,
    t: 2,
    steps: 4,
    message: '`leaky.ipynb:12 kept.append(h.detach())` keeps 32 MiB a step',
    stacks: [],
    error: null,
    auto: false,
    ...partial
  };
}

/** A live probe with three steps of 1, 2, 3 GiB allocated. */
export function probe(partial: Partial<IProbeInfo> = {}): IProbeInfo {
  return {
    pid: 1,
    kernel_id: 'k1',
    device: 0,
    limit: 80 * GiB,
    steps: 100,
    skipped: 0,
    last: null,
    alive: true,
    series: {
      step: [0, 50, 100],
      allocated: [1 * GiB, 2 * GiB, 3 * GiB],
      reserved: [2 * GiB, 3 * GiB, 4 * GiB]
    },
    triage: null,
    cells: null,
    fragmentation: null,
    ...partial
  };
}

export function kernel(partial: Partial<IKernelInfo> = {}): IKernelInfo {
  return {
    kernel_id: 'k1',
    kernel_name: 'python3',
    notebook: 'leaky.ipynb',
    execution_state: 'busy',
    user: 'me',
    pid: 1,
    pids: [1],
    memory: { '0': 1 },
    history: { t: [], used: [] },
    probe: null,
    leak: null,
    idle: { seconds: null, holder: false, cached: null, message: null },
    placement: {
      cuda_visible_devices: null,
      readable: true,
      gpus: null,
      source: 'off',
      reason: null
    },
    ...partial
  };
}

export function script(partial: Partial<IScriptInfo> = {}): IScriptInfo {
  return {
    pid: 4242,
    argv: ['train.py', '--epochs', '3'],
    rank: null,
    owner: { kind: 'terminal', via_pid: 4000 },
    probe: probe({ pid: 4242, kernel_id: null }),
    leak: null,
    ...partial
  };
}
