/**
 * Pure formatting: numbers to the short strings the panel and status bar show.
 * No DOM, no JupyterLab imports, so jest covers it directly.
 */
import { IGpuReading, IKernelInfo, ILeakVerdict, IProbeInfo } from './types';

export type MemoryUnits = 'GiB' | 'GB';

const NA = 'n/a';

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Bytes in one GiB / GB. */
export function unitBytes(units: MemoryUnits): number {
  return units === 'GiB' ? 1024 ** 3 : 1e9;
}

/**
 * Three significant digits at most, trailing zeros dropped: 12.4, 79.6, 0.25, 125.
 * Keeps status bar text short at any memory size.
 */
export function shortNumber(v: number): string {
  const a = Math.abs(v);
  let digits: number;
  if (a >= 100) {
    digits = 0;
  } else if (a >= 10) {
    digits = 1;
  } else if (a >= 1) {
    digits = 2;
  } else {
    digits = 2;
  }
  const s = v.toFixed(digits);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** "12.4 GiB"; MiB/MB below one unit so a small process is not "0 GiB". */
export function formatBytes(
  bytes: number | null | undefined,
  units: MemoryUnits = 'GiB'
): string {
  if (!isNum(bytes)) {
    return NA;
  }
  const big = unitBytes(units);
  if (Math.abs(bytes) >= big) {
    return `${shortNumber(bytes / big)} ${units}`;
  }
  const small = units === 'GiB' ? 1024 ** 2 : 1e6;
  const smallName = units === 'GiB' ? 'MiB' : 'MB';
  return `${shortNumber(bytes / small)} ${smallName}`;
}

/** "12.4/79.6 GiB": used and total in the same unit, the unit once. */
export function formatMemoryPair(
  used: number | null | undefined,
  total: number | null | undefined,
  units: MemoryUnits = 'GiB'
): string {
  if (!isNum(used) || !isNum(total)) {
    return NA;
  }
  const big = unitBytes(units);
  return `${shortNumber(used / big)}/${shortNumber(total / big)} ${units}`;
}

export function formatPercent(v: number | null | undefined): string {
  return isNum(v) ? `${Math.round(v)}%` : NA;
}

/** Ratio used/total as 0..100, or null when unknown. */
export function memoryPercent(
  used: number | null | undefined,
  total: number | null | undefined
): number | null {
  if (!isNum(used) || !isNum(total) || total <= 0) {
    return null;
  }
  return Math.max(0, Math.min(100, (100 * used) / total));
}

export function formatWatts(mw: number | null | undefined): string {
  return isNum(mw) ? `${Math.round(mw / 1000)} W` : NA;
}

/** "231/700 W"; just the draw when the limit is unknown. */
export function formatPower(
  mw: number | null | undefined,
  limitMw: number | null | undefined
): string {
  if (!isNum(mw)) {
    return NA;
  }
  if (!isNum(limitMw)) {
    return formatWatts(mw);
  }
  return `${Math.round(mw / 1000)}/${Math.round(limitMw / 1000)} W`;
}

export function formatTemp(c: number | null | undefined): string {
  return isNum(c) ? `${Math.round(c)} °C` : NA;
}

export function formatClock(mhz: number | null | undefined): string {
  return isNum(mhz) ? `${Math.round(mhz)} MHz` : NA;
}

/** "SM 1980 MHz · Mem 2619 MHz"; an unknown clock is left out, both unknown is n/a. */
export function clocksText(
  sm: number | null | undefined,
  mem: number | null | undefined
): string {
  const parts: string[] = [];
  if (isNum(sm)) {
    parts.push(`SM ${formatClock(sm)}`);
  }
  if (isNum(mem)) {
    parts.push(`Mem ${formatClock(mem)}`);
  }
  return parts.length ? parts.join(' · ') : NA;
}

/** PCIe throughput from KB/s (NVML's unit) to MB/s or GB/s. */
export function formatKbps(kbps: number | null | undefined): string {
  if (!isNum(kbps)) {
    return NA;
  }
  const bps = kbps * 1000;
  if (bps >= 1e9) {
    return `${shortNumber(bps / 1e9)} GB/s`;
  }
  return `${shortNumber(bps / 1e6)} MB/s`;
}

/**
 * The throttle reasons the server sends (jupyter_gpu_panel/metrics/sources/nvml.py,
 * THROTTLE_REASONS: already words, one per NVML clock-event bit) to what the
 * panel shows. Anything else (the server's "other (0x200)" for bits it does
 * not name) is shown as sent.
 */
const THROTTLE_WORDS: { [k: string]: string } = {
  idle: 'idle',
  'applications clock setting': 'application clocks setting',
  'software power cap': 'software power cap',
  'hardware slowdown': 'hardware slowdown',
  'sync boost': 'sync boost',
  'software thermal slowdown': 'software thermal slowdown',
  'hardware thermal slowdown': 'hardware thermal slowdown',
  'power brake': 'power brake (external)',
  'display clock setting': 'display clock setting'
};

export function throttleText(reasons: string[] | null | undefined): string {
  if (!reasons) {
    return NA;
  }
  if (reasons.length === 0) {
    return 'none';
  }
  const words = reasons.map(r => THROTTLE_WORDS[r] ?? r);
  return Array.from(new Set(words)).join(', ');
}

/** "12 s", "4 min", "2 h 5 min", "3 d": for OOM forecasts and ages. */
export function formatDuration(seconds: number | null | undefined): string {
  if (!isNum(seconds)) {
    return NA;
  }
  const s = Math.max(0, seconds);
  if (s < 60) {
    return `${Math.round(s)} s`;
  }
  if (s < 3600) {
    return `${Math.round(s / 60)} min`;
  }
  if (s < 86400) {
    const h = Math.floor(s / 3600);
    const m = Math.round((s - h * 3600) / 60);
    return m === 0 || m === 60
      ? `${m === 60 ? h + 1 : h} h`
      : `${h} h ${m} min`;
  }
  return `${Math.round(s / 86400)} d`;
}

/** "+1.2 GiB/min": the growth rate of a leak. */
export function formatRate(
  bytesPerSecond: number | null | undefined,
  units: MemoryUnits = 'GiB'
): string {
  if (!isNum(bytesPerSecond)) {
    return NA;
  }
  const perMin = bytesPerSecond * 60;
  const sign = perMin >= 0 ? '+' : '-';
  return `${sign}${formatBytes(Math.abs(perMin), units)}/min`;
}

/**
 * One line for a kernel's leak verdict, e.g.
 * "Leak: +1.2 GiB/min, out of memory in about 12 min (~340 steps)".
 */
export function leakText(
  leak: ILeakVerdict | null | undefined,
  units: MemoryUnits = 'GiB'
): string {
  if (!leak) {
    return 'No verdict yet';
  }
  if (!leak.leak) {
    return leak.message || 'No leak';
  }
  const parts: string[] = [];
  if (isNum(leak.bytes_per_second)) {
    parts.push(formatRate(leak.bytes_per_second, units));
  }
  const eta: string[] = [];
  if (isNum(leak.seconds_to_oom)) {
    eta.push(`in about ${formatDuration(leak.seconds_to_oom)}`);
  }
  if (leak.source === 'steps' && isNum(leak.steps_to_oom)) {
    eta.push(`~${Math.round(leak.steps_to_oom)} steps`);
  }
  if (eta.length) {
    parts.push(
      `out of memory ${eta.length === 2 ? `${eta[0]} (${eta[1]})` : eta[0]}`
    );
  }
  const head = leak.actionable ? 'Leak' : 'Possible leak';
  return parts.length ? `${head}: ${parts.join(', ')}` : head;
}

/** Basename of a notebook path for compact display. */
export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(i + 1) : path;
}

/** The GPU the status bar reports: the busiest, ties broken by memory use. */
export function busiestGpu(gpus: IGpuReading[]): IGpuReading | null {
  let best: IGpuReading | null = null;
  let bestKey = -Infinity;
  for (const g of gpus) {
    if (g.state !== 'ok') {
      continue;
    }
    const util = isNum(g.util_gpu) ? g.util_gpu : 0;
    const mem = memoryPercent(g.mem_used, g.mem_total) ?? 0;
    const key = util * 1000 + mem;
    if (key > bestKey) {
      best = g;
      bestKey = key;
    }
  }
  return best;
}

/**
 * Status bar text: "GPU 63% · 12.4/79.6 GiB" for one GPU; with several,
 * the busiest one with its index: "GPU2 63% · 12.4/79.6 GiB".
 */
export function statusBarText(
  gpus: IGpuReading[],
  units: MemoryUnits = 'GiB'
): string {
  const g = busiestGpu(gpus);
  if (!g) {
    return gpus.length ? 'GPU lost' : 'GPU —';
  }
  const label = gpus.length > 1 ? `GPU${g.index}` : 'GPU';
  return `${label} ${formatPercent(g.util_gpu)} · ${formatMemoryPair(
    g.mem_used,
    g.mem_total,
    units
  )}`;
}

/** Sum of one kernel's GPU memory over all GPUs. */
export function kernelMemory(k: IKernelInfo): number {
  let s = 0;
  for (const v of Object.values(k.memory || {})) {
    if (isNum(v)) {
      s += v;
    }
  }
  return s;
}

/** Clock time "14:03:22" for "last data at" labels. */
export function clockTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Round an axis top up to a readable value: 62.7 -> 65, 0.83 -> 0.85, 1234 -> 1500. */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) {
    return 1;
  }
  const step = 10 ** Math.floor(Math.log10(v)) / 2;
  return Math.ceil(v / step - 1e-9) * step;
}

/** The in-kernel memory probe's state in words: tracking or stopped, and its steps. */
export function probeText(
  probe: IProbeInfo | null | undefined,
  requested = false
): string {
  if (!probe) {
    return requested ? 'loading, waiting for the first step…' : 'not tracked';
  }
  const steps = probe.steps;
  const n = `, ${steps} step${steps === 1 ? '' : 's'}`;
  if (!probe.alive) {
    return `stopped${n}`;
  }
  return `tracking${n}`;
}

/** A kernel's GPU memory: "none" when it holds no GPU memory at all. */
export function kernelMemoryText(
  k: IKernelInfo,
  units: MemoryUnits = 'GiB'
): string {
  const hasAny = Object.keys(k.memory || {}).length > 0;
  return hasAny ? formatBytes(kernelMemory(k), units) : 'none';
}
