/**
 * Pure: what each cluster `state` tells the reader, the empty-table texts and the
 * control labels of the Cluster section.
 */
import { clockTime } from '../format';
import { ITrans, plainTrans } from '../i18n';
import { Cluster, ClusterFilter, ClusterSortKey, IClusterQuery } from './model';

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
    case 'truncated':
      return {
        level: 'warning',
        title: trans.__('Cluster view truncated'),
        detail:
          msg ||
          trans.__(
            'Prometheus answered more than this server reads: some nodes and GPUs may be missing, and the counts are lower bounds.'
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
