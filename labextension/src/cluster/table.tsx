/**
 * The Cluster section's table: the state notice, the summary line, the
 * filter buttons and text filter, and one compact table row per GPU (a
 * sticky, sortable header; a memory bar drawn by CSS width, no chart per
 * row). Data and callbacks in, nothing fetched, no store.
 *
 * Cheap at 100 nodes x 8 GPUs and beyond: the table is windowed (only the
 * rows in its scroll box, plus a margin, are in the DOM; spacer rows keep the
 * scroll height and aria-rowcount/aria-rowindex the full count), and rows
 * are memoized on what they show, so a poll re-renders only the GPUs that
 * changed.
 *
 * Plain elements only (no @jupyterlab/ui-components import), so jest can
 * render it in node; its CSS (`CLUSTER_CSS`) comes in its own <style>.
 */
import * as React from 'react';

import { MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import {
  Cluster,
  CLUSTER_COLUMNS,
  CLUSTER_FILTERS,
  clusterRows,
  ClusterSortKey,
  filterCounts,
  IClusterQuery,
  IClusterRow,
  nextSort,
  visibleRows
} from './model';
import { IRowDisplay, rowDisplay, summaryText } from './text';
import { columnLabel, emptyText, filterLabel, stateNotice } from './notice';
import { col, Notice, Row, Spacer } from './rows';
import { CLUSTER_CSS } from './style';

/** A layout effect in the browser; a plain effect where React renders without a DOM (jest). */
const useIsomorphicLayoutEffect =
  typeof window === 'undefined' ? React.useEffect : React.useLayoutEffect;

export interface IClusterTableProps {
  /** The cluster document; null while the first one loads. */
  doc: Cluster | null;
  /** The last fetch's error (the last good document stays shown); null when it worked. */
  error: string | null;
  /** `doc` is the last good answer, kept from this time (Unix s), Prometheus being unreachable now. */
  keptFrom?: number | null;
  query: IClusterQuery;
  onQueryChange: (query: IClusterQuery) => void;
  units?: MemoryUnits;
  trans: ITrans;
}

/** A row's height in px as CSS draws it (measured after the first render; this is the guess). */
export const ROW_HEIGHT = 20;
/** Rows rendered above and below the visible ones. */
export const OVERSCAN = 12;
/** The scroll box's height before it is measured (its CSS max-height). */
const INITIAL_VIEWPORT = 640;

/** The rows to render for a scroll position: [first, end). */
export function windowRange(
  total: number,
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  overscan: number = OVERSCAN
): [number, number] {
  const h = rowHeight > 0 ? rowHeight : ROW_HEIGHT;
  let first = Math.max(0, Math.floor(scrollTop / h) - overscan);
  let end = Math.min(total, Math.ceil((scrollTop + viewport) / h) + overscan);
  if (first >= total) {
    // a scroll position left from a longer list (a filter just applied): its last screenful,
    // never an empty window while the box scrolls back
    first = Math.max(0, total - Math.ceil(viewport / h) - overscan);
    end = total;
  }
  return [Math.min(first, end), end];
}

function ariaSort(
  query: IClusterQuery,
  key: ClusterSortKey
): 'ascending' | 'descending' | 'none' {
  if (query.sort.key !== key) {
    return 'none';
  }
  return query.sort.dir === 'asc' ? 'ascending' : 'descending';
}

export function ClusterTable(props: IClusterTableProps): JSX.Element {
  const { doc, error, query, onQueryChange, trans } = props;
  const units = props.units ?? 'GiB';
  const rows = React.useMemo(() => clusterRows(doc), [doc]);
  // Cell text for the rows rendered only, once per document (a cache, filled as rows scroll in).
  const displays = React.useMemo(
    () => new Map<string, IRowDisplay>(),
    // eslint-disable-next-line react-hooks/exhaustive-deps -- rows, units and trans are not read: they are the cache's key, a new document, unit or language starts an empty cache
    [rows, units, trans]
  );
  const display = (r: IClusterRow): IRowDisplay => {
    let d = displays.get(r.id);
    if (!d) {
      d = rowDisplay(r, units, trans);
      displays.set(r.id, d);
    }
    return d;
  };
  const counts = React.useMemo(() => filterCounts(rows), [rows]);
  // Typing in the filter stays responsive: the table follows a beat later.
  const deferred = React.useDeferredValue(query);
  const shown = React.useMemo(
    () => visibleRows(rows, deferred),
    [rows, deferred]
  );
  const notice = doc ? stateNotice(doc, trans, props.keptFrom ?? null) : null;
  const hasTable = doc !== null && rows.length > 0;

  // The window: which rows are in the DOM for the scroll box's position.
  const scroller = React.useRef<HTMLDivElement>(null);
  const [box, setBox] = React.useState({ top: 0, height: INITIAL_VIEWPORT });
  const [rowHeight, setRowHeight] = React.useState(ROW_HEIGHT);
  const readBox = React.useCallback(() => {
    const el = scroller.current;
    if (!el) {
      return;
    }
    const next = { top: el.scrollTop, height: el.clientHeight };
    setBox(b => (b.top === next.top && b.height === next.height ? b : next));
  }, []);
  React.useEffect(() => {
    const el = scroller.current;
    if (!el) {
      return;
    }
    const measure = () => {
      readBox();
      const first = el.querySelector('tr[data-cluster-row]');
      const h = first ? first.getBoundingClientRect().height : 0;
      if (h > 0) {
        setRowHeight(old => (Math.abs(old - h) > 0.01 ? h : old));
      }
    };
    measure();
    if (typeof ResizeObserver === 'undefined') {
      return;
    }
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, [hasTable, readBox]);
  // A new filter, sort or text shows the table from its top.
  const { filter, text, sort } = deferred;
  useIsomorphicLayoutEffect(() => {
    if (scroller.current) {
      scroller.current.scrollTop = 0;
      readBox(); // now, not at the scroll event: the window follows in this same paint
    }
  }, [filter, text, sort.key, sort.dir, readBox]);
  const [first, end] = windowRange(
    shown.length,
    box.top,
    box.height,
    rowHeight
  );
  return (
    <div
      className="jp-GpuPanel-cluster"
      data-cluster-view=""
      data-state={doc ? doc.state : 'loading'}
    >
      <style>{CLUSTER_CSS}</style>
      {error && (
        <div
          className="jp-GpuPanel-cluster-error"
          role="alert"
          data-cluster-error=""
        >
          {doc
            ? trans.__('Could not refresh the cluster: %1', error)
            : trans.__('Could not load the cluster: %1', error)}
        </div>
      )}
      {doc === null && !error && (
        <div className="jp-GpuPanel-cluster-muted" data-cluster-loading="">
          {trans.__('Loading…')}
        </div>
      )}
      {doc && notice && <Notice notice={notice} state={doc.state} />}
      {doc && doc.summary && (
        <div
          className="jp-GpuPanel-cluster-summary"
          data-cluster-summary=""
          data-nodes={doc.summary.nodes}
          data-gpus={doc.summary.gpus}
          data-held={doc.summary.held}
          data-leak-alarms={doc.summary.leak_alarms}
          data-idle-holders={doc.summary.idle_holders}
        >
          {summaryText(doc.summary, trans)}
        </div>
      )}
      {hasTable && (
        <>
          <div className="jp-GpuPanel-cluster-tools">
            <div
              className="jp-GpuPanel-cluster-filters"
              role="group"
              aria-label={trans.__('Show GPUs')}
            >
              {CLUSTER_FILTERS.map(f => (
                <button
                  key={f}
                  type="button"
                  className="jp-GpuPanel-cluster-filter"
                  data-cluster-filter={f}
                  aria-pressed={query.filter === f}
                  onClick={() => onQueryChange({ ...query, filter: f })}
                >
                  {filterLabel(f, trans)}
                  <span className="jp-GpuPanel-cluster-count">{counts[f]}</span>
                </button>
              ))}
            </div>
            <input
              type="search"
              className="jp-GpuPanel-cluster-search"
              data-cluster-search=""
              placeholder={trans.__('Filter: node, notebook, user')}
              aria-label={trans.__('Filter GPUs by node, notebook or user')}
              value={query.text}
              onChange={e => onQueryChange({ ...query, text: e.target.value })}
            />
          </div>
          <div
            ref={scroller}
            className="jp-GpuPanel-cluster-scroll"
            data-cluster-scroll=""
            onScroll={readBox}
          >
            <table
              className="jp-GpuPanel-cluster-table"
              data-cluster-table=""
              data-rows={shown.length}
              data-sort-key={deferred.sort.key}
              data-sort-dir={deferred.sort.dir}
              data-filter={deferred.filter}
              data-first-row={first}
              data-rendered={end - first}
              aria-label={trans.__('Cluster GPUs')}
              aria-rowcount={shown.length + 1}
            >
              <colgroup>
                {CLUSTER_COLUMNS.map(c => (
                  <col key={c} className={col(c)} />
                ))}
              </colgroup>
              <thead>
                <tr aria-rowindex={1}>
                  {CLUSTER_COLUMNS.map(c => {
                    const sort = ariaSort(query, c);
                    return (
                      <th
                        key={c}
                        scope="col"
                        aria-sort={sort}
                        data-sort-key={c}
                        className={col(c)}
                      >
                        <button
                          type="button"
                          className="jp-GpuPanel-cluster-sort"
                          title={trans.__('Sort by %1', columnLabel(c, trans))}
                          onClick={() =>
                            onQueryChange({
                              ...query,
                              sort: nextSort(query.sort, c)
                            })
                          }
                        >
                          {columnLabel(c, trans)}
                          {sort === 'ascending'
                            ? ' ▲'
                            : sort === 'descending'
                              ? ' ▼'
                              : ''}
                        </button>
                      </th>
                    );
                  })}
                </tr>
              </thead>
              <tbody>
                <Spacer rows={first} height={rowHeight} />
                {shown.slice(first, end).map((r, i) => (
                  <Row
                    key={r.id}
                    row={r}
                    d={display(r)}
                    index={first + i}
                    trans={trans}
                  />
                ))}
                <Spacer rows={shown.length - end} height={rowHeight} />
              </tbody>
            </table>
            {shown.length === 0 && (
              <div
                className="jp-GpuPanel-cluster-empty"
                data-cluster-empty={deferred.filter}
                role="status"
              >
                {emptyText(deferred, trans)}
              </div>
            )}
          </div>
        </>
      )}
    </div>
  );
}
