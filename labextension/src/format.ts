/**
 * Pure formatting: numbers to the short strings the panel and status bar show.
 * No DOM, no JupyterLab imports, so jest covers it directly.
 */
import { ITrans, plainTrans } from './i18n';
import { IKernelInfo, ILeakVerdict } from './types';

export type MemoryUnits = 'GiB' | 'GB';

/** What a formatter returns for a reading it does not have; views word it (`missingText`). */
export const NA = 'n/a';

/**
 * A formatted value as shown: "n/a" (the card does not report it) is
 * "not recorded" on replay (the recording lacks it), both translated.
 */
export function missingText(
  text: string,
  replay: boolean,
  trans: ITrans = plainTrans
): string {
  if (text !== NA) {
    return text;
  }
  return replay ? trans.__('not recorded') : trans.__('n/a');
}

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
function throttleWord(reason: string, trans: ITrans): string {
  switch (reason) {
    case 'idle':
      return trans.__('idle');
    case 'applications clock setting':
      return trans.__('application clocks setting');
    case 'software power cap':
      return trans.__('software power cap');
    case 'hardware slowdown':
      return trans.__('hardware slowdown');
    case 'sync boost':
      return trans.__('sync boost');
    case 'software thermal slowdown':
      return trans.__('software thermal slowdown');
    case 'hardware thermal slowdown':
      return trans.__('hardware thermal slowdown');
    case 'power brake':
      return trans.__('power brake (external)');
    case 'display clock setting':
      return trans.__('display clock setting');
    default:
      return reason;
  }
}

export function throttleText(
  reasons: string[] | null | undefined,
  trans: ITrans = plainTrans
): string {
  if (!reasons) {
    return NA;
  }
  if (reasons.length === 0) {
    return trans.__('none');
  }
  const words = reasons.map(r => throttleWord(r, trans));
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
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): string {
  if (!leak) {
    return trans.__('No verdict yet');
  }
  if (!leak.leak) {
    return leak.message || trans.__('No leak');
  }
  const parts: string[] = [];
  if (isNum(leak.bytes_per_second)) {
    parts.push(formatRate(leak.bytes_per_second, units));
  }
  const time = isNum(leak.seconds_to_oom)
    ? formatDuration(leak.seconds_to_oom)
    : null;
  const steps =
    leak.source === 'steps' && isNum(leak.steps_to_oom)
      ? Math.round(leak.steps_to_oom)
      : null;
  if (time !== null && steps !== null) {
    parts.push(trans.__('out of memory in about %1 (~%2 steps)', time, steps));
  } else if (time !== null) {
    parts.push(trans.__('out of memory in about %1', time));
  } else if (steps !== null) {
    parts.push(trans.__('out of memory ~%1 steps', steps));
  }
  const head = leak.actionable ? trans.__('Leak') : trans.__('Possible leak');
  return parts.length ? `${head}: ${parts.join(', ')}` : head;
}

/** Basename of a notebook path for compact display. */
export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(i + 1) : path;
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

/** A kernel's GPU memory: "none" when it holds no GPU memory at all. */
export function kernelMemoryText(
  k: IKernelInfo,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): string {
  const hasAny = Object.keys(k.memory || {}).length > 0;
  return hasAny ? formatBytes(kernelMemory(k), units) : trans.__('none');
}
