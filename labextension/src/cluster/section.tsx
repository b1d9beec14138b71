/**
 * The Cluster section: a collapsible "Cluster" heading with a Refresh
 * button over ClusterTable. It reads the cluster document from the store
 * (`cluster`, as the panel hands it down) and tells the store when it is on
 * screen (the panel shown, the section open, its browser tab shown): the
 * store polls GET api/gpu-panel/cluster only then. The reader's filter, sort
 * and text are kept across polls.
 */
import {
  caretDownIcon,
  caretRightIcon,
  refreshIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { DEFAULT_QUERY, IClusterQuery } from './model';
import { IClusterResult } from './poller';
import { ClusterTable } from './table';
import { summaryText } from './text';

/** What the section asks of the store. */
export interface IClusterFeed {
  /** The section is on screen or not: the store polls the cluster only while it is. */
  showCluster(shown: boolean): void;
  /** The cluster document now (Refresh). */
  refreshCluster(): Promise<void>;
}

export interface IClusterSectionProps {
  /** The store's cluster state (`store.state.cluster`). */
  cluster: IClusterResult;
  /** The store. */
  feed: IClusterFeed;
  trans: ITrans;
  /** The panel is shown: the store polls only while it is. */
  visible: boolean;
  units?: MemoryUnits;
  /** Open at first (default true); the reader's toggle wins after that. */
  defaultOpen?: boolean;
}

/** The browser tab is shown (a hidden tab does not poll either). */
function usePageVisible(): boolean {
  const [shown, setShown] = React.useState(
    () => typeof document === 'undefined' || !document.hidden
  );
  React.useEffect(() => {
    const onChange = () => setShown(!document.hidden);
    document.addEventListener('visibilitychange', onChange);
    return () => document.removeEventListener('visibilitychange', onChange);
  }, []);
  return shown;
}

function ClusterSectionImpl(props: IClusterSectionProps): JSX.Element {
  const { trans, visible, feed, cluster: result } = props;
  const [open, setOpen] = React.useState(props.defaultOpen ?? true);
  const [query, setQuery] = React.useState<IClusterQuery>(DEFAULT_QUERY);
  const pageVisible = usePageVisible();
  const shown = visible && open && pageVisible;
  // Told in an effect (never while rendering), and taken back when unmounted.
  React.useEffect(() => {
    feed.showCluster(shown);
    return () => feed.showCluster(false);
  }, [feed, shown]);

  const bodyId = 'jp-GpuPanel-cluster-body';
  const doc = result.doc;
  const Caret = open ? caretDownIcon : caretRightIcon;
  return (
    <section
      className="jp-GpuPanel-section jp-GpuPanel-clusterSection"
      aria-label={trans.__('Cluster')}
      data-cluster-section=""
      data-open={open ? 'true' : 'false'}
      data-state={doc ? doc.state : 'loading'}
      data-fetching={result.fetching ? 'true' : 'false'}
    >
      <div className="jp-GpuPanel-sectionHead">
        <h3 className="jp-GpuPanel-sectionTitle" style={{ margin: 0 }}>
          <button
            type="button"
            data-cluster-toggle=""
            aria-expanded={open}
            aria-controls={bodyId}
            onClick={() => setOpen(!open)}
            style={{
              display: 'inline-flex',
              alignItems: 'center',
              gap: 2,
              padding: 0,
              border: 'none',
              background: 'none',
              color: 'inherit',
              font: 'inherit',
              textTransform: 'inherit',
              cursor: 'pointer'
            }}
          >
            <Caret.react tag="span" elementSize="small" />
            {trans.__('Cluster')}
          </button>
        </h3>
        {!open && doc?.summary && (
          <span
            className="jp-GpuPanel-muted jp-GpuPanel-small"
            style={{
              flex: '1 1 auto',
              minWidth: 0,
              margin: '0 6px',
              overflow: 'hidden',
              textOverflow: 'ellipsis',
              whiteSpace: 'nowrap'
            }}
          >
            {summaryText(doc.summary, trans)}
          </span>
        )}
        <ToolbarButtonComponent
          icon={refreshIcon}
          tooltip={trans.__('Refresh the cluster')}
          enabled={!result.fetching}
          dataset={{ clusterRefresh: '' }}
          onClick={() => void feed.refreshCluster()}
        />
      </div>
      {open && (
        <div id={bodyId}>
          <ClusterTable
            doc={doc}
            error={result.error}
            keptFrom={result.keptFrom}
            query={query}
            onQueryChange={setQuery}
            units={props.units}
            trans={trans}
          />
        </div>
      )}
    </section>
  );
}

/**
 * Memoized: the panel re-renders on every stream tick, the section only when
 * its own props change (the store replaces `cluster` when a poll answers).
 */
export const ClusterSection = React.memo(ClusterSectionImpl);
