/**
 * Pure: a kernel's (or probed script's) memory chart: the series and axis
 * (per step from the probe, else over time from NVML), the OOM forecast
 * line and the limit. No DOM, no uPlot, so jest covers it.
 */
import { MemoryUnits, unitBytes } from '../format';
import { ITrans, plainTrans } from '../i18n';
import { ILeakForecast, IMemorySubject } from '../types';

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** The lines a kernel chart can hold; the widget maps each to a colour and dash. */
export type KernelLineKey =
  'allocated' | 'reserved' | 'used' | 'forecast' | 'limit';

/** A line's legend label. */
export function kernelLineLabel(
  key: KernelLineKey,
  trans: ITrans = plainTrans
): string {
  switch (key) {
    case 'allocated':
      return trans.__('Allocated');
    case 'reserved':
      return trans.__('Reserved');
    case 'used':
      return trans.__('Used');
    case 'forecast':
      return trans.__('Forecast');
    case 'limit':
      return trans.__('Limit');
  }
}

export interface IKernelChart {
  /** "step": x is the optimizer step (probe); "time": unix seconds (NVML). */
  axis: 'step' | 'time';
  /** Unit of the y values in `data`: the memory setting's unit, or MiB/MB below one of it. */
  unit: string;
  title: string;
  lines: KernelLineKey[];
  /** [x, ...one column per line], y in `unit`; ready for uPlot. */
  data: Array<Array<number | null>>;
  /** Whether the forecast line is drawn, and whether it was shortened to keep the data readable. */
  forecast: boolean;
  forecastClipped: boolean;
  /** Bytes, when the limit line is drawn. */
  capacity: number | null;
}

/**
 * The forecast may run far past the data (an OOM hours away); it is cut to
 * at most this many times the data's x span, so the measured part keeps
 * most of a narrow chart. The cut keeps the slope.
 */
export const FORECAST_MAX_SPAN = 3;

/** Two x values closer than this are one point (float noise in unix seconds). */
const X_EPS = 1e-6;

interface IColumns {
  axis: 'step' | 'time';
  x: number[];
  cols: Array<Array<number | null>>;
  keys: KernelLineKey[];
}

/** The measured series to plot: probe steps when there are two or more, else NVML history. */
export function measuredSeries(k: IMemorySubject): IColumns | null {
  const s = k.probe?.series;
  if (s && Array.isArray(s.step) && s.step.length >= 2) {
    const n = s.step.length;
    const col = (v: ReadonlyArray<number | null> | undefined) =>
      Array.from({ length: n }, (_, i) => (v && isNum(v[i]) ? v[i] : null));
    const cols = [col(s.allocated)];
    const keys: KernelLineKey[] = ['allocated'];
    if (Array.isArray(s.reserved) && s.reserved.some(isNum)) {
      cols.push(col(s.reserved));
      keys.push('reserved');
    }
    return { axis: 'step', x: s.step.slice(), cols, keys };
  }
  const h = k.history;
  if (h && Array.isArray(h.t) && h.t.length >= 2) {
    const n = h.t.length;
    const used = Array.from({ length: n }, (_, i) =>
      h.used && isNum(h.used[i]) ? h.used[i] : null
    );
    return { axis: 'time', x: h.t.slice(), cols: [used], keys: ['used'] };
  }
  return null;
}

/**
 * The forecast segment to draw on this axis, or null: a missing or malformed
 * forecast, or one on the other axis (a time forecast over a step chart), is
 * not drawn. Cut to FORECAST_MAX_SPAN times the data span, keeping its slope.
 */
export function forecastSegment(
  forecast: ILeakForecast | null | undefined,
  axis: 'step' | 'time',
  x: number[]
): { x0: number; y0: number; x1: number; y1: number; clipped: boolean } | null {
  if (!forecast || forecast.axis !== axis) {
    return null;
  }
  const { x0, y0, x1, y1 } = forecast;
  if (![x0, y0, x1, y1].every(isNum) || !(x1 > x0)) {
    return null;
  }
  const span = x.length ? x[x.length - 1] - x[0] : 0;
  if (span > 0 && x1 - x0 > FORECAST_MAX_SPAN * span) {
    const cx = x0 + FORECAST_MAX_SPAN * span;
    const cy = y0 + ((y1 - y0) * (cx - x0)) / (x1 - x0);
    return { x0, y0, x1: cx, y1: cy, clipped: true };
  }
  return { x0, y0, x1, y1, clipped: false };
}

/**
 * Sorted union of x and extra points; returns the merged x and, for each
 * merged index, the index into x (or -1 where the point is an extra one).
 */
export function mergeX(
  x: number[],
  extra: number[]
): { x: number[]; from: number[] } {
  const ex = extra.filter(isNum).sort((a, b) => a - b);
  const out: number[] = [];
  const from: number[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < ex.length) {
    if (j >= ex.length || (i < x.length && x[i] <= ex[j] + X_EPS)) {
      if (j < ex.length && Math.abs(x[i] - ex[j]) <= X_EPS) {
        j++; // the extra point is already there
        continue;
      }
      out.push(x[i]);
      from.push(i);
      i++;
    } else {
      if (!out.length || Math.abs(out[out.length - 1] - ex[j]) > X_EPS) {
        out.push(ex[j]);
        from.push(-1);
      }
      j++;
    }
  }
  return { x: out, from };
}

/** The y unit for a chart whose largest value is maxBytes: GiB/GB, or MiB/MB below one. */
export function chartUnit(
  maxBytes: number,
  units: MemoryUnits
): { name: string; bytes: number } {
  const big = unitBytes(units);
  if (maxBytes >= big) {
    return { name: units, bytes: big };
  }
  return units === 'GiB'
    ? { name: 'MiB', bytes: 1024 ** 2 }
    : { name: 'MB', bytes: 1e6 };
}

/** Index of the nearest x within X_EPS, or -1. */
function findX(x: number[], v: number): number {
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i] - v) <= X_EPS) {
      return i;
    }
  }
  return -1;
}

/**
 * A kernel's (or script's) memory chart, or null when there is nothing to
 * plot (fewer than two points on both the probe and the NVML series).
 */
export function kernelChart(
  k: IMemorySubject,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): IKernelChart | null {
  const m = measuredSeries(k);
  if (!m) {
    return null;
  }
  const leak = k.leak;
  const seg = forecastSegment(leak?.forecast, m.axis, m.x);
  const capacity =
    leak && isNum(leak.capacity) && leak.capacity > 0 ? leak.capacity : null;
  const merged = seg
    ? mergeX(m.x, [seg.x0, seg.x1])
    : { x: m.x, from: m.x.map((_, i) => i) };

  let maxBytes = 0;
  for (const c of m.cols) {
    for (const v of c) {
      if (v !== null && v > maxBytes) {
        maxBytes = v;
      }
    }
  }
  if (seg) {
    maxBytes = Math.max(maxBytes, seg.y0, seg.y1);
  }
  if (capacity !== null) {
    maxBytes = Math.max(maxBytes, capacity);
  }
  const unit = chartUnit(maxBytes, units);
  const scale = (v: number | null) => (v === null ? null : v / unit.bytes);

  const data: Array<Array<number | null>> = [merged.x];
  for (const c of m.cols) {
    data.push(merged.from.map(i => (i < 0 ? null : scale(c[i]))));
  }
  const lines = [...m.keys];
  if (seg) {
    const f: Array<number | null> = merged.x.map(() => null);
    const i0 = findX(merged.x, seg.x0);
    const i1 = findX(merged.x, seg.x1);
    if (i0 >= 0) {
      f[i0] = scale(seg.y0);
    }
    if (i1 >= 0) {
      f[i1] = scale(seg.y1);
    }
    data.push(f);
    lines.push('forecast');
  }
  if (capacity !== null) {
    data.push(merged.x.map(() => scale(capacity)));
    lines.push('limit');
  }
  return {
    axis: m.axis,
    unit: unit.name,
    title: chartTitle(m.axis, leak, unit.name, trans),
    lines,
    data,
    forecast: !!seg,
    forecastClipped: !!seg?.clipped,
    capacity
  };
}

/** What the probe's positions are: its verdict's step_source (optimizer steps by default). */
function chartTitle(
  axis: 'step' | 'time',
  leak: IMemorySubject['leak'],
  unit: string,
  trans: ITrans
): string {
  if (axis === 'time') {
    return trans.__('Kernel GPU memory (%1)', unit);
  }
  const source = leak && leak.source === 'steps' ? leak.step_source : null;
  if (source === 'forward') {
    return trans.__('Memory by iteration (%1)', unit);
  }
  if (source === 'timer') {
    // the probe's clock: one reading a second while the cell runs
    return trans.__('Memory, read each second (%1)', unit);
  }
  return trans.__('Memory by step (%1)', unit);
}

/** Step numbers for an axis: 950, 2.5k, 12k, 1.2M. */
export function formatStep(v: number): string {
  const a = Math.abs(v);
  const trim = (s: string) => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);
  if (a >= 1e6) {
    return `${trim((v / 1e6).toFixed(a >= 1e7 ? 0 : 1))}M`;
  }
  if (a >= 1e3) {
    return `${trim((v / 1e3).toFixed(a >= 1e4 ? 0 : 1))}k`;
  }
  return String(Math.round(v));
}
