/**
 * Pure: the Cluster section's table over the server's cluster document
 * (GET api/gpu-panel/cluster): one row per GPU, the filters (mine, all, leak
 * alarms, idle holders), the column sort and the text filter. Its words (the
 * summary line, who holds each GPU, what each `state` says) are in `text.ts`.
 * No DOM, no JupyterLab import, so jest covers it.
 */
import { components } from '../api-schema';

export type Cluster = components['schemas']['Cluster'];
export type ClusterGPU = components['schemas']['ClusterGPU'];
export type ClusterHolder = components['schemas']['ClusterHolder'];
export type ClusterState = Cluster['state'];
export type ClusterSummary = NonNullable<Cluster['summary']>;

/** Which GPUs the table lists. */
export type ClusterFilter = 'mine' | 'all' | 'alarms' | 'idle';
export const CLUSTER_FILTERS: readonly ClusterFilter[] = [
  'mine',
  'all',
  'alarms',
  'idle'
];

/** The sortable columns; `memory` sorts by the used share of the GPU's memory. */
export type ClusterSortKey =
  'node' | 'util' | 'memory' | 'power' | 'temp' | 'holders' | 'leak';
export const CLUSTER_COLUMNS: readonly ClusterSortKey[] = [
  'node',
  'util',
  'memory',
  'power',
  'temp',
  'holders',
  'leak'
];

export type SortDir = 'asc' | 'desc';

export interface IClusterSort {
  key: ClusterSortKey;
  dir: SortDir;
}

/** What the reader chose: the section keeps it across polls. */
export interface IClusterQuery {
  filter: ClusterFilter;
  sort: IClusterSort;
  /** Free text matched against node, notebooks and users (case-insensitive). */
  text: string;
}

export const DEFAULT_QUERY: IClusterQuery = {
  filter: 'all',
  sort: { key: 'node', dir: 'asc' },
  text: ''
};

/** A GPU as the table shows it: the document's GPU and what the table sorts and filters by. */
export interface IClusterRow {
  /** Unique and stable across polls: node and GPU index (or UUID). */
  id: string;
  node: string;
  /** NVML's index, the UUID when the series had none, or null. */
  gpu: string | null;
  /** Position in the document (node, then GPU index): the tie-break of every sort. */
  order: number;
  g: ClusterGPU;
  /** mem_used / mem_total, 0..1, or null when either is unknown. */
  memShare: number | null;
  /** Kernels holding memory on it: named and counted. */
  holderCount: number;
  /** One of the reader's kernels holds it. */
  mine: boolean;
  /** Lower-cased node, notebooks and users, for the text filter. */
  haystack: string;
}

export function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Memory used share, 0..1 (clamped), or null. */
export function memoryShare(
  used: number | null | undefined,
  total: number | null | undefined
): number | null {
  if (!isNum(used) || !isNum(total) || total <= 0) {
    return null;
  }
  return Math.max(0, Math.min(1, used / total));
}

/** Every GPU of every node, one row each, in the document's order. */
export function clusterRows(doc: Cluster | null): IClusterRow[] {
  const rows: IClusterRow[] = [];
  if (!doc) {
    return rows;
  }
  for (const n of doc.nodes) {
    n.gpus.forEach((g, i) => {
      const ident = g.gpu ?? g.uuid ?? `#${i}`;
      const words = [n.node];
      for (const h of g.holders) {
        if (h.notebook) {
          words.push(h.notebook);
        }
        if (h.user) {
          words.push(h.user);
        }
      }
      rows.push({
        id: `${n.node}/${ident}`,
        node: n.node,
        gpu: g.gpu ?? g.uuid,
        order: rows.length,
        g,
        memShare: memoryShare(g.mem_used, g.mem_total),
        holderCount: g.holders.length + g.others.count,
        mine: g.holders.some(h => h.mine),
        haystack: words.join('\n').toLowerCase()
      });
    });
  }
  return rows;
}

export function matchesFilter(
  row: IClusterRow,
  filter: ClusterFilter
): boolean {
  switch (filter) {
    case 'mine':
      return row.mine;
    case 'alarms':
      return row.g.leak_alarms > 0;
    case 'idle':
      return row.g.idle_holders > 0;
    default:
      return true;
  }
}

export function filterRows(
  rows: readonly IClusterRow[],
  filter: ClusterFilter
): IClusterRow[] {
  return rows.filter(r => matchesFilter(r, filter));
}

/** How many rows each filter keeps (the filter buttons' counts). */
export function filterCounts(
  rows: readonly IClusterRow[]
): Record<ClusterFilter, number> {
  const counts = { mine: 0, all: rows.length, alarms: 0, idle: 0 };
  for (const r of rows) {
    counts.mine += r.mine ? 1 : 0;
    counts.alarms += r.g.leak_alarms > 0 ? 1 : 0;
    counts.idle += r.g.idle_holders > 0 ? 1 : 0;
  }
  return counts;
}

/**
 * Rows whose node, a notebook or a user contains every whitespace-separated
 * term (case-insensitive). Other users' names and notebooks are only matched
 * where the document names them.
 */
export function textFilter(
  rows: readonly IClusterRow[],
  text: string
): IClusterRow[] {
  const terms = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (!terms.length) {
    return [...rows];
  }
  return rows.filter(r => terms.every(t => r.haystack.includes(t)));
}

const collator = new Intl.Collator(undefined, {
  numeric: true,
  sensitivity: 'base'
});

function gpuIndex(gpu: string | null): number {
  const n = gpu === null ? NaN : Number(gpu);
  return Number.isInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

/** The value a numeric column sorts by; null sorts last in both directions. */
export function sortValue(
  row: IClusterRow,
  key: ClusterSortKey
): number | null {
  const g = row.g;
  switch (key) {
    case 'util':
      return isNum(g.util) ? g.util : null;
    case 'memory':
      return row.memShare;
    case 'power':
      return isNum(g.power_w) ? g.power_w : null;
    case 'temp':
      return isNum(g.temp_c) ? g.temp_c : null;
    case 'holders':
      return row.holderCount;
    case 'leak':
      return g.leak_alarms;
    default:
      return null;
  }
}

function compareNodes(a: IClusterRow, b: IClusterRow): number {
  return (
    collator.compare(a.node, b.node) ||
    gpuIndex(a.gpu) - gpuIndex(b.gpu) ||
    collator.compare(a.gpu ?? '', b.gpu ?? '')
  );
}

/**
 * Sorted by one column, ascending or descending. Unknown values (null) go
 * last either way, and ties keep the document's order (node, then GPU) in
 * both directions, so a re-sort or a poll never shuffles equal rows.
 */
export function sortRows(
  rows: readonly IClusterRow[],
  sort: IClusterSort
): IClusterRow[] {
  const sign = sort.dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    let c: number;
    if (sort.key === 'node') {
      c = sign * compareNodes(a, b);
    } else {
      const va = sortValue(a, sort.key);
      const vb = sortValue(b, sort.key);
      if (va === null || vb === null) {
        c = va === vb ? 0 : va === null ? 1 : -1;
      } else {
        c = sign * (va - vb);
      }
    }
    return c || a.order - b.order;
  });
}

/** The direction a column starts in: names A to Z, numbers largest first. */
export function defaultDir(key: ClusterSortKey): SortDir {
  return key === 'node' ? 'asc' : 'desc';
}

/** A click on a column header: the same column flips, another starts in its default direction. */
export function nextSort(
  current: IClusterSort,
  key: ClusterSortKey
): IClusterSort {
  if (current.key === key) {
    return { key, dir: current.dir === 'asc' ? 'desc' : 'asc' };
  }
  return { key, dir: defaultDir(key) };
}

/** The rows the table shows for a query: filter, text filter, sort. */
export function visibleRows(
  rows: readonly IClusterRow[],
  query: IClusterQuery
): IClusterRow[] {
  return sortRows(
    textFilter(filterRows(rows, query.filter), query.text),
    query.sort
  );
}
