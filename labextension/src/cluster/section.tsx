/**
 * The Cluster section: a collapsible "Cluster" heading with a Refresh
 * button over ClusterView. It polls the cluster document (GET
 * api/gpu-panel/cluster, through the `fetchCluster` it is given) while it is
 * visible, open and its browser tab shown, every `refreshSeconds` (10 s by
 * default), and keeps the reader's filter, sort and text across polls.
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
import { Cluster, DEFAULT_QUERY, IClusterQuery } from './model';
import { summaryText } from './text';
import {
  ClusterPoller,
  DEFAULT_REFRESH_SECONDS,
  IClusterResult
} from './poller';
import { ClusterView } from './view';

export interface IClusterSectionProps {
  /** GET api/gpu-panel/cluster: the app's API client's `cluster()`. */
  fetchCluster: () => Promise<Cluster>;
  trans: ITrans;
  /** Poll period in seconds; default 10. */
  refreshSeconds?: number;
  /** The panel is shown: polling stops while it is not. */
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
  const { trans, visible } = props;
  const refreshSeconds = props.refreshSeconds ?? DEFAULT_REFRESH_SECONDS;
  const [open, setOpen] = React.useState(props.defaultOpen ?? true);
  const [query, setQuery] = React.useState<IClusterQuery>(DEFAULT_QUERY);
  const [result, setResult] = React.useState<IClusterResult>({
    doc: null,
    keptFrom: null,
    error: null,
    at: null,
    fetching: false
  });
  // The latest fetch function, so a new closure from the panel does not restart polling.
  const fetchRef = React.useRef(props.fetchCluster);
  fetchRef.current = props.fetchCluster;
  const pageVisible = usePageVisible();
  const active = visible && open && pageVisible;
  // Created in an effect (and disposed in its cleanup), so a remount gets a live poller.
  const poller = React.useRef<ClusterPoller | null>(null);
  const settings = React.useRef({ refreshSeconds, active });
  settings.current = { refreshSeconds, active };
  React.useEffect(() => {
    const p = new ClusterPoller(
      () => fetchRef.current(),
      setResult,
      settings.current.refreshSeconds
    );
    poller.current = p;
    p.setActive(settings.current.active);
    return () => {
      p.dispose();
      poller.current = null;
    };
  }, []);
  React.useEffect(() => {
    poller.current?.setRefreshSeconds(refreshSeconds);
  }, [refreshSeconds]);
  React.useEffect(() => {
    poller.current?.setActive(active);
  }, [active]);

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
          onClick={() => void poller.current?.refresh()}
        />
      </div>
      {open && (
        <div id={bodyId}>
          <ClusterView
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
 * its own props change. `fetchCluster` is read when a poll starts, so a new
 * closure for the same client neither re-renders nor restarts polling.
 */
export const ClusterSection = React.memo(
  ClusterSectionImpl,
  (a, b) =>
    a.trans === b.trans &&
    a.visible === b.visible &&
    a.refreshSeconds === b.refreshSeconds &&
    a.units === b.units &&
    a.defaultOpen === b.defaultOpen
);
