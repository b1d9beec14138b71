/**
 * Per-GPU time series kept in the browser: seeded from `GET history`, grown
 * from stream snapshots, trimmed to the longest chart window.
 *
 * Columnar (one array of times, one array per field) because that is what
 * both the server sends and uPlot draws, so no per-tick reshaping is needed.
 * Pure: no DOM, no I/O.
 */
import {
  HistoryField,
  IGpuReading,
  IHistoryResponse,
  ISnapshot
} from './types';

/** Fields the charts draw; also the ones asked of `GET history`. */
export const CHART_FIELDS = [
  'util_gpu',
  'util_mem',
  'mem_used',
  'mem_total',
  'power_mw',
  'temp_c'
] as const satisfies readonly HistoryField[];

export type ChartField = (typeof CHART_FIELDS)[number];

export interface ISeries {
  t: number[];
  values: { [field: string]: Array<number | null> };
}

/** All GPUs' series, by GPU index. */
export type SeriesMap = Map<number, ISeries>;

export function emptySeries(fields: readonly string[]): ISeries {
  const values: ISeries['values'] = {};
  for (const f of fields) {
    values[f] = [];
  }
  return { t: [], values };
}

/** First index whose time is >= t (binary search; times are ascending). */
export function lowerBound(times: number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid] < t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/** Times closer than this are the same sample (float noise from JSON). */
const SAME_T = 1e-6;

/**
 * Merge `incoming` into `base` (both ascending), returning a new series.
 * On equal times the incoming value wins, so a history seed that overlaps
 * stream ticks already shown does not duplicate points.
 */
export function mergeSeries(
  base: ISeries,
  incoming: ISeries,
  fields: readonly string[]
): ISeries {
  const out = emptySeries(fields);
  let i = 0;
  let j = 0;
  const push = (src: ISeries, k: number) => {
    out.t.push(src.t[k]);
    for (const f of fields) {
      const col = src.values[f];
      out.values[f].push(col && k < col.length ? col[k] : null);
    }
  };
  while (i < base.t.length || j < incoming.t.length) {
    if (j >= incoming.t.length) {
      push(base, i++);
    } else if (i >= base.t.length) {
      push(incoming, j++);
    } else {
      const d = base.t[i] - incoming.t[j];
      if (Math.abs(d) <= SAME_T) {
        push(incoming, j++);
        i++;
      } else if (d < 0) {
        push(base, i++);
      } else {
        push(incoming, j++);
      }
    }
  }
  return out;
}

/**
 * Append one reading in place (the common per-tick path: O(1)).
 * Out-of-order or repeated times fall back to a merge.
 */
export function appendReading(
  series: ISeries,
  reading: IGpuReading,
  fields: readonly HistoryField[]
): ISeries {
  const t = reading.t;
  if (typeof t !== 'number' || !Number.isFinite(t)) {
    return series;
  }
  const last = series.t.length ? series.t[series.t.length - 1] : -Infinity;
  if (t > last + SAME_T) {
    series.t.push(t);
    for (const f of fields) {
      const v = reading[f];
      (series.values[f] ??= new Array(series.t.length - 1).fill(null)).push(
        typeof v === 'number' && Number.isFinite(v) ? v : null
      );
    }
    return series;
  }
  const one = emptySeries(fields);
  one.t.push(t);
  for (const f of fields) {
    const v = reading[f];
    one.values[f].push(typeof v === 'number' ? v : null);
  }
  return mergeSeries(series, one, fields);
}

/**
 * Drop points older than `keepFrom`, in place. Trimming only once the
 * excess passes `slack` points keeps the per-tick cost O(1) amortised
 * (Array.splice at the front is O(n)).
 */
export function trimSeries(
  series: ISeries,
  keepFrom: number,
  slack = 64
): void {
  const cut = lowerBound(series.t, keepFrom);
  if (cut === 0 || cut < slack) {
    return;
  }
  series.t.splice(0, cut);
  for (const f of Object.keys(series.values)) {
    series.values[f].splice(0, cut);
  }
}

/** Series per GPU from a `GET history` response. */
export function seriesFromHistory(
  resp: IHistoryResponse,
  fields: readonly string[]
): SeriesMap {
  const map: SeriesMap = new Map();
  for (const g of resp.gpus || []) {
    const s = emptySeries(fields);
    // Sort defensively: the merge assumes ascending times.
    const order = g.t.map((_, k) => k).sort((a, b) => g.t[a] - g.t[b]);
    for (const k of order) {
      s.t.push(g.t[k]);
      for (const f of fields) {
        const col = g.values[f];
        const v = col ? col[k] : null;
        s.values[f].push(typeof v === 'number' ? v : null);
      }
    }
    map.set(g.index, s);
  }
  return map;
}

/** Merge a seed (history) into the live map, per GPU; returns a new map. */
export function mergeSeriesMaps(
  live: SeriesMap,
  seed: SeriesMap,
  fields: readonly string[]
): SeriesMap {
  const out: SeriesMap = new Map();
  const keys = new Set<number>([...live.keys(), ...seed.keys()]);
  for (const k of keys) {
    const a = live.get(k) ?? emptySeries(fields);
    const b = seed.get(k);
    out.set(k, b ? mergeSeries(b, a, fields) : a);
  }
  return out;
}

/**
 * The part of a series inside [end - windowSeconds, end] as uPlot data:
 * [times, ...columns]. `end` is the newest sample time (server clock), so
 * a skewed browser clock cannot empty the chart.
 */
export function windowData(
  series: ISeries,
  fields: readonly string[],
  windowSeconds: number,
  scale: { [field: string]: number } = {}
): Array<Array<number | null>> {
  const n = series.t.length;
  if (n === 0) {
    return [[], ...fields.map(() => [])];
  }
  const end = series.t[n - 1];
  const from = lowerBound(series.t, end - windowSeconds);
  const out: Array<Array<number | null>> = [series.t.slice(from)];
  for (const f of fields) {
    const col = (series.values[f] ?? []).slice(from);
    const k = scale[f];
    out.push(k ? col.map(v => (v === null ? null : v / k)) : col);
  }
  return out;
}

/** Newest time in any GPU's series, or null with no data. */
export function latestTime(map: SeriesMap): number | null {
  let best: number | null = null;
  for (const s of map.values()) {
    if (s.t.length) {
      const t = s.t[s.t.length - 1];
      best = best === null ? t : Math.max(best, t);
    }
  }
  return best;
}

/** The value a legend shows for a column: the last sample, or the last non-null one. */
export function legendValue(
  col: ReadonlyArray<number | null | undefined>,
  lastValid = false
): number | null {
  if (!lastValid) {
    const v = col.length ? col[col.length - 1] : null;
    return v === undefined ? null : v;
  }
  for (let i = col.length - 1; i >= 0; i--) {
    const v = col[i];
    if (v !== null && v !== undefined) {
      return v;
    }
  }
  return null;
}

/**
 * A stream tick into the series map, in place: each GPU's reading appended,
 * then points older than `keepSeconds` before it dropped.
 */
export function appendSnapshot(
  series: SeriesMap,
  snap: ISnapshot,
  keepSeconds: number,
  fields: readonly HistoryField[] = CHART_FIELDS
): void {
  for (const g of snap.gpus || []) {
    const next = appendReading(
      series.get(g.index) ?? emptySeries(fields),
      g,
      fields
    );
    series.set(g.index, next);
    trimSeries(next, g.t - keepSeconds);
  }
}
