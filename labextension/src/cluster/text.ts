/**
 * Pure: what the Cluster section says — the summary line, who holds each GPU,
 * and the row's display values and titles (what each `state` says: notice.ts).
 */
import {
  baseName,
  formatBytes,
  formatDuration,
  formatMemoryPair,
  MemoryUnits,
  NA
} from '../format';
import { holdersText, IHoldersText } from '../holders';
import { ITrans, plainTrans } from '../i18n';
import {
  ClusterGPU,
  ClusterHolder,
  ClusterSummary,
  IClusterRow,
  isNum
} from './model';

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

/**
 * Who holds a GPU: the named holders (the reader's first, then by memory),
 * and the holders the deployment does not name, counted by user (one user
 * may hold a GPU from several kernels; the server counts them per kernel).
 * "no kernel": no Jupyter kernel holds it, other processes still may.
 */
export function clusterHolders(
  g: ClusterGPU,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): IHoldersText {
  const named = [...g.holders]
    .sort((a, b) => Number(b.mine) - Number(a.mine) || b.memory - a.memory)
    .map(h => ({
      name: holderName(h, trans),
      bytes: h.memory,
      note: holderMarks(h, trans)
    }));
  const users = g.others.users;
  const label = trans._n('%1 other user', '%1 other users', users, users);
  const kernels = g.others.count;
  const others =
    users > 0
      ? {
          label,
          line:
            kernels > users
              ? `${label} ${trans._n('(%1 kernel)', '(%1 kernels)', kernels, kernels)}`
              : label,
          count: kernels,
          bytes: g.others.memory
        }
      : null;
  return holdersText(named, {
    units,
    others,
    none: {
      text: trans.__('no kernel'),
      title: trans.__(
        'No Jupyter kernel holds memory on it (other processes may)'
      )
    }
  });
}

/** A named holder's tooltip marks: "leak, out of memory in about 12 min", "idle 2 h 5 min". */
function holderMarks(h: ClusterHolder, trans: ITrans): string {
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
  return marks.join(', ');
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
    holders: clusterHolders(g, units, trans),
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
