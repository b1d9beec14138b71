/**
 * Pure: the Cluster section's logic over the server's cluster document
 * (GET api/gpu-panel/cluster). One row per GPU, the filters (mine, all,
 * leak alarms, idle holders), the column sort, the text filter, the summary
 * line, who holds each GPU, and what each `state` tells the reader. No DOM,
 * no JupyterLab import, so jest covers it.
 */
import { components } from '../api-schema';
import {
  baseName,
  clockTime,
  formatBytes,
  formatDuration,
  formatMemoryPair,
  MemoryUnits,
  NA
} from '../format';
import { ITrans, plainTrans } from '../i18n';

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

function isNum(v: unknown): v is number {
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

/**
 * "100 nodes · 800 GPUs · 480 held · 3 leak alarms · 12 idle holders"; the
 * stale GPUs are added when some are. Empty without a summary.
 */
export function summaryText(
  summary: ClusterSummary | null,
  trans: ITrans = plainTrans
): string {
  if (!summary) {
    return '';
  }
  const parts = [
    trans._n('%1 node', '%1 nodes', summary.nodes, summary.nodes),
    trans._n('%1 GPU', '%1 GPUs', summary.gpus, summary.gpus),
    trans.__('%1 held', summary.held),
    trans._n(
      '%1 leak alarm',
      '%1 leak alarms',
      summary.leak_alarms,
      summary.leak_alarms
    ),
    trans._n(
      '%1 idle holder',
      '%1 idle holders',
      summary.idle_holders,
      summary.idle_holders
    )
  ];
  if (summary.stale > 0) {
    parts.push(trans.__('%1 stale', summary.stale));
  }
  return parts.join(' · ');
}

/** A holder's notebook (its file name), or its kernel's short id. */
export function holderLabel(
  h: ClusterHolder,
  trans: ITrans = plainTrans
): string {
  if (h.notebook) {
    return baseName(h.notebook);
  }
  return h.kernel_id
    ? trans.__('kernel %1', h.kernel_id.slice(0, 8))
    : trans.__('a kernel');
}

/** "you: train.ipynb", "alice: a.ipynb", or the notebook alone when the user is not known. */
export function holderName(
  h: ClusterHolder,
  trans: ITrans = plainTrans
): string {
  const what = holderLabel(h, trans);
  if (h.mine) {
    return trans.__('you: %1', what);
  }
  return h.user ? `${h.user}: ${what}` : what;
}

export interface IHoldersText {
  /** "you: train.ipynb, alice: a.ipynb +1 · 3 other users", or "no kernel" (no Jupyter kernel: other processes may still hold it). */
  text: string;
  /** Every holder with its memory, one a line (the tooltip). */
  title: string;
  /** Kernels holding it (named and counted). */
  count: number;
}

/** Most names a row shows before "+N". */
export const NAMES_SHOWN = 2;

/**
 * Who holds a GPU: the named holders (the reader's first, then by memory),
 * and the holders the deployment does not name, counted. The server counts
 * those per kernel.
 */
export function holdersText(
  g: ClusterGPU,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): IHoldersText {
  const named = [...g.holders].sort(
    (a, b) => Number(b.mine) - Number(a.mine) || b.memory - a.memory
  );
  const count = named.length + g.others.count;
  if (count === 0) {
    return {
      text: trans.__('no kernel'),
      title: trans.__(
        'No Jupyter kernel holds memory on it (other processes may)'
      ),
      count
    };
  }
  const parts: string[] = [];
  if (named.length) {
    const shown = named.slice(0, NAMES_SHOWN).map(h => holderName(h, trans));
    const more = named.length - shown.length;
    parts.push(more > 0 ? `${shown.join(', ')} +${more}` : shown.join(', '));
  }
  const others = g.others.count;
  if (others > 0) {
    parts.push(trans._n('%1 other user', '%1 other users', others, others));
  }
  const lines = named.map(h => {
    const marks: string[] = [];
    if (h.leak_actionable) {
      marks.push(
        isNum(h.seconds_to_oom)
          ? trans.__(
              'leak, out of memory in about %1',
              formatDuration(h.seconds_to_oom)
            )
          : trans.__('leak')
      );
    }
    if (isNum(h.idle_seconds)) {
      marks.push(trans.__('idle %1', formatDuration(h.idle_seconds)));
    }
    const extra = marks.length ? ` (${marks.join(', ')})` : '';
    return `${holderName(h, trans)}: ${formatBytes(h.memory, units)}${extra}`;
  });
  if (others > 0) {
    lines.push(
      `${trans._n('%1 other user', '%1 other users', others, others)}: ${formatBytes(
        g.others.memory,
        units
      )}`
    );
  }
  return { text: parts.join(' · '), title: lines.join('\n'), count };
}

/** The soonest out-of-memory forecast among the GPU's named leaking holders, in seconds. */
export function soonestOom(g: ClusterGPU): number | null {
  let best: number | null = null;
  for (const h of g.holders) {
    if (h.leak_actionable && isNum(h.seconds_to_oom)) {
      best =
        best === null ? h.seconds_to_oom : Math.min(best, h.seconds_to_oom);
    }
  }
  return best;
}

/** The longest idle time among the GPU's named holders, in seconds. */
export function longestIdle(g: ClusterGPU): number | null {
  let best: number | null = null;
  for (const h of g.holders) {
    if (isNum(h.idle_seconds)) {
      best = best === null ? h.idle_seconds : Math.max(best, h.idle_seconds);
    }
  }
  return best;
}

/** The leak mark's tooltip: "2 leak alarms · out of memory in about 12 min". */
export function leakTitle(g: ClusterGPU, trans: ITrans = plainTrans): string {
  if (g.leak_alarms <= 0) {
    return '';
  }
  const head = trans._n(
    '%1 leak alarm',
    '%1 leak alarms',
    g.leak_alarms,
    g.leak_alarms
  );
  const oom = soonestOom(g);
  return oom === null
    ? head
    : `${head} · ${trans.__('out of memory in about %1', formatDuration(oom))}`;
}

/** The idle mark's tooltip: "1 idle holder · idle for 2 h 5 min". */
export function idleTitle(g: ClusterGPU, trans: ITrans = plainTrans): string {
  if (g.idle_holders <= 0) {
    return '';
  }
  const head = trans._n(
    '%1 idle holder',
    '%1 idle holders',
    g.idle_holders,
    g.idle_holders
  );
  const idle = longestIdle(g);
  return idle === null
    ? head
    : `${head} · ${trans.__('idle for %1', formatDuration(idle))}`;
}

/** Memory used share at which a row's bar turns the warning colour. */
export const MEM_WARN_SHARE = 0.95;

/** A row as the table draws it: its cells' text and tooltips. */
export interface IRowDisplay {
  util: string;
  memUsed: string;
  /** "62.1/79.6 GiB (78%)" */
  memTitle: string;
  /** 0..100 for the bar's width, or null (no bar). */
  memPercent: number | null;
  memWarn: boolean;
  power: string;
  temp: string;
  holders: IHoldersText;
  leakTitle: string;
  idleTitle: string;
  gpuTitle: string;
  /** Everything above in one string: a row re-renders only when it changes. */
  sig: string;
}

/** A row's cells as text; n/a for a reading no exporter gave. */
export function rowDisplay(
  row: IClusterRow,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): IRowDisplay {
  const g = row.g;
  const share = row.memShare;
  const pair = formatMemoryPair(g.mem_used, g.mem_total, units);
  const d = {
    util: isNum(g.util) ? `${Math.round(g.util * 100)}%` : NA,
    memUsed: formatBytes(g.mem_used, units),
    memTitle: share === null ? pair : `${pair} (${Math.round(share * 100)}%)`,
    memPercent: share === null ? null : Math.round(share * 1000) / 10,
    memWarn: share !== null && share >= MEM_WARN_SHARE,
    power: isNum(g.power_w) ? `${Math.round(g.power_w)} W` : NA,
    temp: isNum(g.temp_c) ? `${Math.round(g.temp_c)} °C` : NA,
    holders: holdersText(g, units, trans),
    leakTitle: leakTitle(g, trans),
    idleTitle: idleTitle(g, trans),
    gpuTitle: ''
  };
  // the readings again, with the SM clock: a narrow panel hides some columns
  const readings = [
    trans.__('Util %1', d.util),
    d.power,
    d.temp,
    isNum(g.sm_clock_hz) ? `SM ${Math.round(g.sm_clock_hz / 1e6)} MHz` : null
  ].filter(x => x !== null && x !== NA);
  d.gpuTitle = [gpuTitle(row, trans), readings.join(' · ')].join('\n');
  const sig = [
    d.util,
    d.memUsed,
    d.memTitle,
    d.memPercent,
    d.power,
    d.temp,
    d.holders.text,
    d.holders.title,
    d.leakTitle,
    d.idleTitle,
    d.gpuTitle,
    g.leak_alarms,
    g.idle_holders,
    g.stale,
    row.mine,
    row.memShare
  ].join('\u0001');
  return { ...d, sig };
}

/** A GPU's details for its node cell's tooltip: model, UUID, sources, last scrape. */
export function gpuTitle(row: IClusterRow, trans: ITrans = plainTrans): string {
  const g = row.g;
  const lines = [
    g.gpu !== null ? trans.__('%1, GPU %2', row.node, g.gpu) : row.node
  ];
  if (g.model) {
    lines.push(g.model);
  }
  if (g.uuid) {
    lines.push(g.uuid);
  }
  if (g.sources.length) {
    lines.push(
      trans.__(
        'From: %1',
        g.sources
          .map(s =>
            s === 'dcgm'
              ? trans.__('DCGM exporter')
              : trans.__('Jupyter server')
          )
          .join(', ')
      )
    );
  }
  if (isNum(g.age_s)) {
    lines.push(trans.__('Last scraped %1 ago', formatDuration(g.age_s)));
  }
  if (g.stale) {
    lines.push(trans.__('Stale: not scraped recently'));
  }
  return lines.join('\n');
}

/** The server setting that turns the Cluster section on. */
export const PROMETHEUS_SETTING = 'c.GPUPanel.prometheus_url';

export type Level = 'info' | 'warning' | 'error';

/** What the section says above (or instead of) the table. */
export interface IClusterNotice {
  level: Level;
  title: string;
  detail: string;
  /** A setting name in `detail` the view shows as code. */
  code?: string;
}

/**
 * The clear state of a document that is not plainly `ok`: how to configure
 * it, the server's reason Prometheus is unreachable, stale or missing
 * series. An `ok` document with some stale GPUs gets an info line; else null.
 */
export function stateNotice(
  doc: Cluster,
  trans: ITrans = plainTrans,
  keptFrom: number | null = null
): IClusterNotice | null {
  const msg = doc.message?.trim() || '';
  const notice = stateNoticeOf(doc, msg, trans);
  if (notice && keptFrom !== null) {
    notice.detail = `${notice.detail} ${trans.__(
      'Showing the last answer, from %1.',
      clockTime(keptFrom)
    )}`;
  }
  return notice;
}

/**
 * The document to show for a new answer: an `unreachable` one keeps the last
 * answer's nodes and summary (a Prometheus blip does not blank the table the
 * reader is sorting), with the new state and message. `keptFrom`: the kept
 * answer's time (Unix seconds), or null when `next` is shown as it is.
 */
export function keepLastGood(
  prev: Cluster | null,
  prevKeptFrom: number | null,
  next: Cluster
): { doc: Cluster; keptFrom: number | null } {
  if (next.state !== 'unreachable' || !prev || prev.nodes.length === 0) {
    return { doc: next, keptFrom: null };
  }
  return {
    doc: { ...prev, state: next.state, message: next.message },
    keptFrom: prevKeptFrom ?? prev.t
  };
}

function stateNoticeOf(
  doc: Cluster,
  msg: string,
  trans: ITrans
): IClusterNotice | null {
  switch (doc.state) {
    case 'not-configured':
      return {
        level: 'info',
        title: trans.__('No Prometheus configured'),
        detail: trans.__(
          'Set %1 to the Prometheus that scrapes this cluster (DCGM exporter and these servers’ /metrics) to see every node’s GPUs here.',
          PROMETHEUS_SETTING
        ),
        code: PROMETHEUS_SETTING
      };
    case 'unreachable':
      return {
        level: 'error',
        title: trans.__('Cannot reach Prometheus'),
        detail:
          msg ||
          trans.__('The server could not query the configured Prometheus.')
      };
    case 'no-gpu-series':
      return {
        level: 'warning',
        title: trans.__('No GPU series in Prometheus'),
        detail:
          msg ||
          trans.__(
            'Prometheus holds no GPU series (DCGM exporter’s or this project’s): check that it scrapes them.'
          )
      };
    case 'stale':
      return {
        level: 'warning',
        title: trans.__('Cluster data is stale'),
        detail:
          msg ||
          trans.__(
            'Every GPU’s last scrape is old: is Prometheus still scraping?'
          )
      };
    default: {
      const stale = doc.summary?.stale ?? 0;
      if (stale > 0) {
        return {
          level: 'info',
          title: trans._n(
            '%1 GPU not scraped recently',
            '%1 GPUs not scraped recently',
            stale,
            stale
          ),
          detail: trans.__('Their readings may be out of date.')
        };
      }
      return null;
    }
  }
}

/** What the table says when a filter (or the text) leaves no row. */
export function emptyText(
  query: IClusterQuery,
  trans: ITrans = plainTrans
): string {
  const text = query.text.trim();
  if (text) {
    return trans.__('No GPU matches “%1”.', text);
  }
  switch (query.filter) {
    case 'mine':
      return trans.__('None of your kernels holds a GPU in the cluster.');
    case 'alarms':
      return trans.__('No leak alarms in the cluster.');
    case 'idle':
      return trans.__('No idle kernel holds a GPU in the cluster.');
    default:
      return trans.__('No GPUs.');
  }
}

/** The filter buttons' labels. */
export function filterLabel(
  filter: ClusterFilter,
  trans: ITrans = plainTrans
): string {
  switch (filter) {
    case 'mine':
      return trans.__('Mine');
    case 'alarms':
      return trans.__('Leak alarms');
    case 'idle':
      return trans.__('Idle');
    default:
      return trans.__('All');
  }
}

/** The column headers. */
export function columnLabel(
  key: ClusterSortKey,
  trans: ITrans = plainTrans
): string {
  switch (key) {
    case 'node':
      return trans.__('Node / GPU');
    case 'util':
      return trans.__('Util');
    case 'memory':
      return trans.__('Memory');
    case 'power':
      return trans.__('Power');
    case 'temp':
      return trans.__('Temp');
    case 'holders':
      return trans.__('Held by');
    default:
      return trans.__('Leak');
  }
}
