/**
 * The Cluster table's pieces: the state notice, one GPU's row (memoized on what
 * it shows) and the spacer rows that keep a windowed table's scroll height.
 */
import * as React from 'react';

import { ITrans } from '../i18n';
import { CLUSTER_COLUMNS, ClusterSortKey, IClusterRow } from './model';
import { IClusterNotice } from './notice';
import { IRowDisplay } from './text';

/** A column's class: its width, alignment and whether a narrow panel hides it are CSS (style.ts). */
export function col(key: ClusterSortKey): string {
  return `jp-GpuPanel-cluster-c-${key}`;
}

export function Notice(props: {
  notice: IClusterNotice;
  state: string;
}): JSX.Element {
  const { notice } = props;
  const detail = notice.code
    ? notice.detail
        .split(notice.code)
        .flatMap((part, i) =>
          i === 0 ? [part] : [<code key={i}>{notice.code}</code>, part]
        )
    : notice.detail;
  return (
    <div
      className="jp-GpuPanel-cluster-notice"
      data-level={notice.level}
      data-cluster-banner={props.state}
      role={notice.level === 'error' ? 'alert' : 'status'}
    >
      <div className="jp-GpuPanel-cluster-noticeTitle">{notice.title}</div>
      <div className="jp-GpuPanel-cluster-noticeDetail">{detail}</div>
    </div>
  );
}

interface IRowProps {
  row: IClusterRow;
  d: IRowDisplay;
  /** Position in the (filtered, sorted) table, from 0. */
  index: number;
  trans: ITrans;
}

function RowView(props: IRowProps): JSX.Element {
  const { row, d, trans } = props;
  const g = row.g;
  return (
    <tr
      aria-rowindex={props.index + 2}
      data-cluster-row=""
      data-node={row.node}
      data-gpu={row.gpu ?? ''}
      data-mem-share={row.memShare === null ? '' : row.memShare.toFixed(4)}
      data-holders={d.holders.count}
      data-leak={g.leak_alarms}
      data-idle={g.idle_holders}
      data-mine={row.mine ? 'true' : 'false'}
      data-stale={g.stale ? 'true' : 'false'}
    >
      <th scope="row" className={col('node')} title={d.gpuTitle}>
        {row.node}
        {row.gpu !== null && (
          <span className="jp-GpuPanel-cluster-gpu">/{row.gpu}</span>
        )}
      </th>
      <td className={col('util')}>{d.util}</td>
      <td className={col('memory')} title={d.memTitle}>
        {d.memUsed}
        {d.memPercent !== null && (
          <span className="jp-GpuPanel-cluster-memBar" aria-hidden="true">
            <span
              className="jp-GpuPanel-cluster-memFill"
              data-warn={d.memWarn ? 'true' : 'false'}
              style={{ width: `${d.memPercent}%`, display: 'block' }}
            />
          </span>
        )}
      </td>
      <td className={col('power')}>{d.power}</td>
      <td className={col('temp')}>{d.temp}</td>
      <td
        className={col('holders')}
        title={[d.holders.title, d.idleTitle].filter(Boolean).join('\n')}
      >
        {g.stale && (
          <span className="jp-GpuPanel-cluster-badge" data-kind="stale">
            {trans.__('stale')}
          </span>
        )}
        {g.idle_holders > 0 && (
          <span
            className="jp-GpuPanel-cluster-badge"
            data-kind="idle"
            title={d.idleTitle}
          >
            {trans.__('idle')}
          </span>
        )}
        {d.holders.text}
      </td>
      <td className={col('leak')}>
        {g.leak_alarms > 0 && (
          <span
            className="jp-GpuPanel-cluster-badge"
            data-kind="leak"
            title={d.leakTitle}
            aria-label={d.leakTitle}
          >
            {g.leak_alarms}
          </span>
        )}
      </td>
    </tr>
  );
}

export const Row = React.memo(
  RowView,
  (a, b) =>
    a.d.sig === b.d.sig &&
    a.index === b.index &&
    a.trans === b.trans &&
    a.row.id === b.row.id
);

export function Spacer(props: {
  rows: number;
  height: number;
}): JSX.Element | null {
  if (props.rows <= 0) {
    return null;
  }
  return (
    <tr
      aria-hidden="true"
      data-cluster-spacer={props.rows}
      style={{ height: props.rows * props.height }}
    >
      <td
        colSpan={CLUSTER_COLUMNS.length}
        style={{ padding: 0, border: 'none' }}
      />
    </tr>
  );
}
