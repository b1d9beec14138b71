/**
 * The sidebar panel: reads the store and hands each feature view the data
 * and callbacks it needs. Holds UI choices only (which cards are open);
 * every number comes from `store.state`.
 */
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import {
  LabIcon,
  refreshIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { BenchmarkLauncher } from './benchmarks/launcher';
import { Banner } from './components';
import { GpuCard, ICardOptions } from './gpus/card';
import { Overview } from './gpus/overview';
import { overviewRows, serverUser, visibleProcesses } from './gpus/rows';
import { ITrans } from './i18n';
import { Confirm, IKernelControl } from './memory/kernelrow';
import { ClusterSection } from './cluster';
import { KernelsSection } from './memory/section';
import { CHART_WINDOWS, IPanelSettings, windowLabel } from './settings';
import { deriveView } from './banners';
import { GpuStore } from './store';

/** Lumino's Message type without a direct @lumino/messaging dependency. */
type Message = Parameters<Widget['processMessage']>[0];

export interface IPanelActions {
  openNotebook(path: string, kernelId?: string | null): void;
  setChartWindow(seconds: number): void;
  createBenchmark(template: string): Promise<void>;
  confirm: Confirm;
  kernels: IKernelControl;
}

export interface IPanelProps {
  store: GpuStore;
  settings: IPanelSettings;
  themeKey: string;
  actions: IPanelActions;
  trans: ITrans;
  /** The panel is shown (the store polls the cluster only then). */
  visible: boolean;
}

/** Cards open by default: the one card of a single GPU; none on a node (the overview shows them). */
export function defaultExpanded(indices: number[]): Set<number> {
  return new Set(indices.length === 1 ? indices : []);
}

function ChartWindow(props: {
  value: number;
  every: number | null;
  onChange: (seconds: number) => void;
  trans: ITrans;
}): JSX.Element {
  const { trans } = props;
  return (
    <div className="jp-GpuPanel-toolbarRow">
      <div
        className="jp-GpuPanel-segmented"
        role="group"
        aria-label={trans.__('Chart window')}
      >
        {CHART_WINDOWS.map(w => (
          <ToolbarButtonComponent
            key={w}
            className="jp-GpuPanel-segment"
            label={windowLabel(w)}
            pressed={props.value === w}
            onClick={() => props.onChange(w)}
          />
        ))}
      </div>
      <span className="jp-GpuPanel-muted jp-GpuPanel-small">
        {props.every !== null ? trans.__('every %1 s', props.every) : ''}
      </span>
    </div>
  );
}

export function PanelView(props: IPanelProps): JSX.Element {
  const { store, settings, themeKey, actions, trans } = props;
  const s = store.state;
  const gpus = s.snapshot?.gpus ?? null;
  const view = deriveView(
    {
      conn: s.conn,
      status: s.status,
      gpuCount: gpus === null ? null : gpus.length,
      lastDataT: s.snapshot?.t ?? null,
      now: Date.now()
    },
    trans
  );
  const [opened, setOpened] = React.useState<Set<number> | null>(null);
  const indices = (gpus ?? []).map(g => g.index);
  const expanded = opened ?? defaultExpanded(indices);
  const root = React.useRef<HTMLDivElement>(null);
  const toggle = (index: number, reveal = false) => {
    const next = new Set(expanded);
    if (next.has(index) && !reveal) {
      next.delete(index);
    } else {
      next.add(index);
    }
    setOpened(next);
    if (reveal) {
      window.requestAnimationFrame(() =>
        root.current
          ?.querySelector(`.jp-GpuPanel-card[data-gpu-index="${index}"]`)
          ?.scrollIntoView({ block: 'nearest' })
      );
    }
  };

  // Runs after the children's effects (charts' setData), so the measure
  // covers message -> DOM + canvas.
  React.useEffect(() => {
    store.markTickRendered();
  });

  const replay = s.status?.source === 'replay';
  const names = new Map<number, string>();
  s.devices.forEach((d, i) => d.name && names.set(i, d.name));
  const me = serverUser(gpus ?? [], s.kernels);
  const units = settings.memoryUnits;
  const options: ICardOptions = {
    metrics: settings.metrics,
    units,
    chartWindow: settings.chartWindow,
    themeKey,
    replay
  };
  const retry = (
    <ToolbarButtonComponent
      className="jp-GpuPanel-action"
      icon={refreshIcon}
      label={trans.__('Retry now')}
      onClick={() => store.retryNow()}
    />
  );
  const showGpus = view.body === 'gpus' && gpus !== null;
  return (
    <div
      ref={root}
      className={`jp-GpuPanel-root${s.conn.phase !== 'live' ? ' jp-GpuPanel-stale' : ''}`}
      data-phase={s.conn.phase}
      data-state={s.status?.state ?? ''}
      data-source={s.status?.source ?? ''}
    >
      <div className="jp-GpuPanel-toolbar">
        {showGpus && settings.metrics.charts && (
          <ChartWindow
            value={settings.chartWindow}
            every={s.effectiveInterval ?? s.status?.interval ?? null}
            onChange={actions.setChartWindow}
            trans={trans}
          />
        )}
        <BenchmarkLauncher
          templates={s.benchmarks}
          onCreate={actions.createBenchmark}
          trans={trans}
        />
      </div>
      {view.banners.map((b, i) => (
        <Banner key={`${b.title}-${i}`} banner={b}>
          {b.retry && retry}
        </Banner>
      ))}
      {view.body !== 'gpus' && view.message && (
        <Banner banner={view.message} big>
          {view.message.retry && retry}
        </Banner>
      )}
      {showGpus && gpus.length > 1 && (
        <Overview
          rows={overviewRows(gpus, names, units, trans)}
          expanded={expanded}
          onSelect={i => toggle(i, true)}
          replay={replay}
          trans={trans}
        />
      )}
      {showGpus &&
        gpus.map(g => (
          <GpuCard
            key={g.index}
            gpu={g}
            device={s.devices.get(g.index)}
            series={s.series.get(g.index)}
            version={s.seriesVersion}
            options={options}
            expanded={expanded.has(g.index)}
            onToggle={i => toggle(i)}
            processes={visibleProcesses(
              g,
              me,
              settings.showOtherUsersProcesses
            )}
            onOpenNotebook={actions.openNotebook}
            trans={trans}
          />
        ))}
      {/* only where a Prometheus is configured: a single machine has no cluster to show */}
      {s.status?.cluster_configured && (
        <ClusterSection
          cluster={s.cluster}
          feed={store}
          trans={trans}
          visible={props.visible}
          units={units}
        />
      )}
      {settings.metrics.kernels && (
        <KernelsSection
          kernels={s.kernels}
          scripts={s.scripts}
          culled={s.culled}
          error={s.kernelsError}
          units={units}
          themeKey={themeKey}
          control={actions.kernels}
          confirm={actions.confirm}
          onOpenNotebook={actions.openNotebook}
          onScriptTriage={pid => store.scriptTriage(pid)}
          onRefresh={() => store.refreshKernels()}
          trans={trans}
        />
      )}
    </div>
  );
}

/** The sidebar widget. Re-renders on store changes; `update()` on settings/theme changes. */
export class GpuPanel extends ReactWidget {
  constructor(
    private _store: GpuStore,
    private _getSettings: () => IPanelSettings,
    private _getThemeKey: () => string,
    private _actions: IPanelActions,
    private _trans: ITrans,
    icon: LabIcon
  ) {
    super();
    this.id = 'jp-gpu-panel';
    this.addClass('jp-GpuPanel');
    this.title.icon = icon;
    this.title.caption = _trans.__('GPU panel');
    this.title.label = '';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', _trans.__('GPU panel'));
  }

  private _shouldRender(): boolean {
    if (!this.isVisible) {
      this._store.skipTick();
      return false;
    }
    return true;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Ticks are not rendered while hidden (below): catch up now.
    this.update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.update(); // the cluster section tells the store to stop polling
  }

  render(): JSX.Element {
    return (
      <UseSignal
        signal={this._store.changed}
        shouldUpdate={() => this._shouldRender()}
      >
        {() => (
          <PanelView
            store={this._store}
            settings={this._getSettings()}
            themeKey={this._getThemeKey()}
            actions={this._actions}
            trans={this._trans}
            visible={this.isVisible}
          />
        )}
      </UseSignal>
    );
  }
}
