/**
 * The sidebar panel: renders the store. Holds no data of its own beyond UI
 * choices; every number comes from `store.state`.
 */
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

/** Lumino's Message type without a direct @lumino/messaging dependency. */
type Message = Parameters<Widget['processMessage']>[0];
import * as React from 'react';

import {
  baseName,
  formatBytes,
  clocksText,
  formatKbps,
  formatMemoryPair,
  formatPercent,
  formatPower,
  formatTemp,
  kernelMemoryText,
  probeText,
  memoryPercent,
  MemoryUnits,
  throttleText,
  unitBytes
} from '../format';
import { KernelAction } from '../api';
import { ISeries, windowData } from '../history';
import {
  canTriage,
  codeParts,
  formatStep,
  IKernelChart,
  ITextPart,
  KERNEL_LINE_LABELS,
  KernelLineKey,
  kernelChart,
  leakLine,
  probeHints,
  scriptCommand,
  scriptDetail,
  scriptTitle,
  triageView
} from '../kernelview';
import { CHART_WINDOWS, IPanelSettings, windowLabel } from '../settings';
import { deriveView, gpuStateText, IBanner } from '../state';
import { GpuStore } from '../store';
import {
  IDeviceInfo,
  IGpuReading,
  IKernelInfo,
  IMemorySubject,
  IProbeInfo,
  IProcessReading,
  IScriptInfo
} from '../types';
import { IChartLine, TimeChart } from './chart';

export interface IPanelActions {
  openNotebook(path: string): void;
  setChartWindow(seconds: number): void;
  createBenchmark(template: string): void;
  /** Resolves true when the user confirms. */
  confirm(title: string, body: string, accept: string): Promise<boolean>;
  notifyError(message: string): void;
}

export interface IPanelProps {
  store: GpuStore;
  settings: IPanelSettings;
  themeKey: string;
  actions: IPanelActions;
}

function Banner(props: {
  banner: IBanner;
  big?: boolean;
  children?: React.ReactNode;
}) {
  const { banner, big } = props;
  return (
    <div
      className={`jp-GpuPanel-banner jp-GpuPanel-banner-${banner.level}${
        big ? ' jp-GpuPanel-message' : ''
      }`}
      role={banner.level === 'info' ? 'status' : 'alert'}
    >
      <div className="jp-GpuPanel-bannerTitle">{banner.title}</div>
      {banner.detail && (
        <div className="jp-GpuPanel-bannerDetail">{banner.detail}</div>
      )}
      {props.children}
    </div>
  );
}

function Gauge(props: {
  label: string;
  percent: number | null;
  text: string;
  testId: string;
}) {
  const { label, percent, text, testId } = props;
  const p = percent === null ? 0 : Math.max(0, Math.min(100, percent));
  const level = p >= 90 ? 'high' : p >= 70 ? 'mid' : 'low';
  return (
    <div className="jp-GpuPanel-gauge">
      <div className="jp-GpuPanel-gaugeHead">
        <span className="jp-GpuPanel-label">{label}</span>
        <span className="jp-GpuPanel-value" data-testid={testId}>
          {text}
        </span>
      </div>
      <div
        className="jp-GpuPanel-bar"
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent === null ? undefined : Math.round(p)}
        aria-valuetext={text}
      >
        <div
          className={`jp-GpuPanel-barFill jp-GpuPanel-barFill-${level}`}
          style={{ width: `${p}%` }}
        />
      </div>
    </div>
  );
}

function Stat(props: { label: string; value: string; testId?: string }) {
  return (
    <>
      <dt className="jp-GpuPanel-label">{props.label}</dt>
      <dd className="jp-GpuPanel-value" data-testid={props.testId}>
        {props.value}
      </dd>
    </>
  );
}

const UTIL_LINES: IChartLine[] = [
  { label: 'GPU', colorVar: '--jp-brand-color1', fallback: '#1976d2' },
  { label: 'Mem bus', colorVar: '--jp-accent-color1', fallback: '#388e3c' }
];
const MEM_LINES: IChartLine[] = [
  { label: 'Used', colorVar: '--jp-brand-color1', fallback: '#1976d2' }
];
const POWER_LINES: IChartLine[] = [
  { label: 'Draw', colorVar: '--jp-warn-color1', fallback: '#f57c00' }
];
const TEMP_LINES: IChartLine[] = [
  { label: 'GPU', colorVar: '--jp-error-color1', fallback: '#d32f2f' }
];

/** Axis and legend values: whole from 100 up, one decimal below, then the unit. */
const unitFmt = (unit: string) => (v: number) =>
  `${v >= 100 ? Math.round(v) : Math.round(v * 10) / 10}${unit}`;
const percentFmt = unitFmt('%');
const plainFmt = unitFmt('');

function Charts(props: {
  series: ISeries | undefined;
  version: number;
  windowSeconds: number;
  units: MemoryUnits;
  memTotal: number | null;
  powerLimitMw: number | null;
  settings: IPanelSettings;
  themeKey: string;
}) {
  const {
    series,
    version,
    windowSeconds,
    units,
    memTotal,
    settings,
    themeKey
  } = props;
  const m = settings.metrics;
  const data = React.useMemo(() => {
    if (!series) {
      return null;
    }
    const big = unitBytes(units);
    return {
      util: windowData(series, ['util_gpu', 'util_mem'], windowSeconds),
      mem: windowData(series, ['mem_used'], windowSeconds, { mem_used: big }),
      power: windowData(series, ['power_mw'], windowSeconds, {
        power_mw: 1000
      }),
      temp: windowData(series, ['temp_c'], windowSeconds)
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- version is not read but must be a dependency: the series is mutated in place and version changes on every append
  }, [series, version, windowSeconds, units]);
  if (!data) {
    return null;
  }
  const memMax = memTotal ? memTotal / unitBytes(units) : null;
  return (
    <div className="jp-GpuPanel-charts">
      {m.utilization && (
        <TimeChart
          title="Utilization"
          data={data.util}
          lines={UTIL_LINES}
          yMin={0}
          yMax={100}
          format={percentFmt}
          themeKey={themeKey}
        />
      )}
      {m.memory && (
        <TimeChart
          title={`Memory (${units})`}
          data={data.mem}
          lines={MEM_LINES}
          yMin={0}
          yMax={memMax}
          format={plainFmt}
          themeKey={themeKey}
        />
      )}
      {m.power && (
        <TimeChart
          title="Power (W)"
          data={data.power}
          lines={POWER_LINES}
          yMin={0}
          yMax={props.powerLimitMw ? props.powerLimitMw / 1000 : null}
          format={plainFmt}
          themeKey={themeKey}
        />
      )}
      {m.temperature && (
        <TimeChart
          title="Temperature (°C)"
          data={data.temp}
          lines={TEMP_LINES}
          yMin={0}
          yMax={null}
          format={plainFmt}
          themeKey={themeKey}
        />
      )}
    </div>
  );
}

/** The OS user the server runs as: kernels and their processes run as it. */
export function serverUser(
  gpus: IGpuReading[],
  kernels: IKernelInfo[] | null = null
): string | null {
  for (const k of kernels ?? []) {
    if (k.user) {
      return k.user;
    }
  }
  for (const g of gpus) {
    for (const p of g.processes || []) {
      if (p.owner && p.owner.kind === 'kernel' && p.user) {
        return p.user;
      }
    }
  }
  return null;
}

function OwnerCell(props: { p: IProcessReading; actions: IPanelActions }) {
  const o = props.p.owner;
  if (!o) {
    return <span className="jp-GpuPanel-muted">{props.p.name || '—'}</span>;
  }
  if (o.kind === 'kernel') {
    const nb = o.notebook;
    const kname = o.kernel_name || 'kernel';
    if (nb) {
      return (
        <button
          className="jp-GpuPanel-link"
          title={`Open ${nb}`}
          aria-label={`Open notebook ${nb}`}
          onClick={() => props.actions.openNotebook(nb)}
        >
          {baseName(nb)}
        </button>
      );
    }
    return <span>{kname} kernel</span>;
  }
  return <span>{o.kind}</span>;
}

function ProcessTable(props: {
  gpu: IGpuReading;
  units: MemoryUnits;
  me: string | null;
  showOthers: boolean;
  actions: IPanelActions;
}) {
  const { gpu, units, me, showOthers, actions } = props;
  const all = [...(gpu.processes || [])].sort(
    (a, b) => (b.used ?? 0) - (a.used ?? 0)
  );
  const visible =
    showOthers || !me
      ? all
      : all.filter(p => !p.user || p.user === me || p.owner?.kind === 'kernel');
  const hidden = all.length - visible.length;
  if (all.length === 0) {
    return (
      <div className="jp-GpuPanel-muted jp-GpuPanel-small">
        No processes on this GPU.
      </div>
    );
  }
  return (
    <div className="jp-GpuPanel-tableWrap">
      <table
        className="jp-GpuPanel-table"
        aria-label={`Processes on GPU ${gpu.index}`}
      >
        <thead>
          <tr>
            <th scope="col">PID</th>
            <th scope="col">User</th>
            <th scope="col" className="jp-GpuPanel-num">
              Memory
            </th>
            <th scope="col">Owner</th>
          </tr>
        </thead>
        <tbody>
          {visible.map(p => (
            <tr key={p.pid} data-pid={p.pid} title={p.command || p.name || ''}>
              <td>{p.pid}</td>
              <td>{p.user ?? '—'}</td>
              <td className="jp-GpuPanel-num" data-bytes={p.used ?? ''}>
                {formatBytes(p.used, units)}
              </td>
              <td>
                <OwnerCell p={p} actions={actions} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {hidden > 0 && (
        <div className="jp-GpuPanel-muted jp-GpuPanel-small">
          {hidden} process{hidden === 1 ? '' : 'es'} of other users hidden (see
          settings).
        </div>
      )}
    </div>
  );
}

function GpuCard(props: {
  gpu: IGpuReading;
  device: IDeviceInfo | undefined;
  series: ISeries | undefined;
  version: number;
  settings: IPanelSettings;
  themeKey: string;
  me: string | null;
  actions: IPanelActions;
}) {
  const { gpu, device, settings } = props;
  const m = settings.metrics;
  const units = settings.memoryUnits;
  const name = device?.name || `GPU ${gpu.index}`;
  const stateText = gpuStateText(gpu.state, gpu.error);
  const memPct = memoryPercent(gpu.mem_used, gpu.mem_total);
  const powerLimit = gpu.power_limit_mw ?? device?.power_limit_mw ?? null;
  return (
    <section
      className={`jp-GpuPanel-card${gpu.state !== 'ok' ? ' jp-GpuPanel-card-bad' : ''}`}
      aria-label={`GPU ${gpu.index}: ${name}`}
      data-gpu-index={gpu.index}
      data-mem-used={gpu.mem_used ?? ''}
      data-t={gpu.t}
    >
      <header className="jp-GpuPanel-cardHead">
        <span className="jp-GpuPanel-gpuIndex">GPU {gpu.index}</span>
        <span className="jp-GpuPanel-gpuName" data-testid="gpu-name">
          {name}
        </span>
      </header>
      {stateText && (
        <div
          className="jp-GpuPanel-banner jp-GpuPanel-banner-error"
          role="alert"
        >
          {stateText}
        </div>
      )}
      {(m.utilization || m.memory) && (
        <div className="jp-GpuPanel-gauges">
          {m.utilization && (
            <Gauge
              label="Utilization"
              percent={gpu.util_gpu ?? null}
              text={formatPercent(gpu.util_gpu)}
              testId="util"
            />
          )}
          {m.memory && (
            <Gauge
              label="Memory"
              percent={memPct}
              text={`${formatMemoryPair(gpu.mem_used, gpu.mem_total, units)}${
                memPct === null ? '' : ` (${Math.round(memPct)}%)`
              }`}
              testId="mem"
            />
          )}
        </div>
      )}
      <dl className="jp-GpuPanel-stats">
        {m.temperature && (
          <Stat
            label="Temperature"
            value={formatTemp(gpu.temp_c)}
            testId="temp"
          />
        )}
        {m.power && (
          <Stat
            label="Power"
            value={formatPower(gpu.power_mw, powerLimit)}
            testId="power"
          />
        )}
        {m.clocks && (
          <Stat
            label="Clocks"
            value={clocksText(gpu.clock_sm, gpu.clock_mem)}
            testId="clocks"
          />
        )}
        {m.throttle && (
          <Stat
            label="Throttling"
            value={throttleText(gpu.throttle_reasons)}
            testId="throttle"
          />
        )}
        {m.pcie && (
          <Stat
            label="PCIe"
            value={`TX ${formatKbps(gpu.pcie_tx_kbps)} · RX ${formatKbps(gpu.pcie_rx_kbps)}`}
          />
        )}
        {gpu.fan_pct !== null && gpu.fan_pct !== undefined && (
          <Stat label="Fan" value={formatPercent(gpu.fan_pct)} />
        )}
      </dl>
      {m.charts && (
        <Charts
          series={props.series}
          version={props.version}
          windowSeconds={settings.chartWindow}
          units={units}
          memTotal={gpu.mem_total ?? device?.memory_total ?? null}
          powerLimitMw={powerLimit}
          settings={settings}
          themeKey={props.themeKey}
        />
      )}
      {m.processes && (
        <ProcessTable
          gpu={gpu}
          units={units}
          me={props.me}
          showOthers={settings.showOtherUsersProcesses}
          actions={props.actions}
        />
      )}
    </section>
  );
}

/** Colour and dash of each kernel chart line; --jp-* variables only. */
const KERNEL_LINE_STYLE: { [k in KernelLineKey]: Omit<IChartLine, 'label'> } = {
  allocated: { colorVar: '--jp-brand-color1', fallback: '#1976d2' },
  reserved: { colorVar: '--jp-accent-color1', fallback: '#388e3c' },
  used: { colorVar: '--jp-brand-color1', fallback: '#1976d2' },
  forecast: {
    colorVar: '--jp-warn-color1',
    fallback: '#f57c00',
    dash: [4, 3],
    spanGaps: true,
    legendLastValid: true
  },
  limit: {
    colorVar: '--jp-error-color1',
    fallback: '#d32f2f',
    dash: [2, 2],
    width: 1,
    legendLastValid: true
  }
};

function kernelChartLines(chart: IKernelChart): IChartLine[] {
  return chart.lines.map(key => ({
    label: KERNEL_LINE_LABELS[key],
    ...KERNEL_LINE_STYLE[key],
    // Measured lines share x with the forecast's points: join across them.
    spanGaps: true,
    legendLastValid: true
  }));
}

/** A kernel's or script's memory per step (probe) or over time (NVML), with the OOM forecast. */
function MemoryChart(props: {
  k: IMemorySubject;
  units: MemoryUnits;
  themeKey: string;
}) {
  const { k, units, themeKey } = props;
  // Each kernels poll brings a new k: recomputed every few seconds, a few hundred points.
  const chart = React.useMemo(() => kernelChart(k, units), [k, units]);
  const lines = React.useMemo(
    () => (chart ? kernelChartLines(chart) : []),
    [chart]
  );
  if (!chart) {
    return null;
  }
  return (
    <div
      className="jp-GpuPanel-kernelChart"
      data-axis={chart.axis}
      data-forecast={
        chart.forecast ? (chart.forecastClipped ? 'clipped' : 'full') : 'none'
      }
    >
      <TimeChart
        title={chart.title}
        data={chart.data}
        lines={lines}
        yMin={0}
        yMax={null}
        format={plainFmt}
        themeKey={themeKey}
        height={80}
        xTime={chart.axis === 'time'}
        xFormat={formatStep}
      />
    </div>
  );
}

function TextWithCode(props: { parts: ITextPart[] }) {
  return (
    <>
      {props.parts.map((p, i) =>
        p.code ? (
          <code key={i}>{p.text}</code>
        ) : (
          <React.Fragment key={i}>{p.text}</React.Fragment>
        )
      )}
    </>
  );
}

/** "Find the leaking line": the button and the latest triage result. */
function Triage(props: {
  k: IMemorySubject;
  units: MemoryUnits;
  busy: boolean;
  onRun: () => void;
}) {
  const { k, units, busy, onRun } = props;
  const view = triageView(k.probe?.triage, units);
  const offer = canTriage(k);
  if (!view && !offer) {
    return null;
  }
  return (
    <div className="jp-GpuPanel-triage" aria-label="Leak triage" role="group">
      {view && (
        <div
          className={`jp-GpuPanel-small${
            view.state === 'done' ? '' : ' jp-GpuPanel-muted'
          } jp-GpuPanel-triageStatus`}
          data-state={view.state}
          role="status"
        >
          <TextWithCode parts={view.parts} />
        </div>
      )}
      {view && view.stacks.length > 0 && (
        <ol
          className="jp-GpuPanel-stacks jp-GpuPanel-small"
          aria-label="Growing allocations"
        >
          {view.stacks.map((st, i) => (
            <li key={`${st.where}-${i}`}>
              <div className="jp-GpuPanel-stackHead">
                <code title={st.where}>{st.where}</code>
                <span className="jp-GpuPanel-num">{st.perStep}</span>
              </div>
              {st.code && (
                <code
                  className="jp-GpuPanel-muted jp-GpuPanel-stackCode"
                  title={st.code}
                >
                  {st.code}
                </code>
              )}
            </li>
          ))}
        </ol>
      )}
      {offer && (
        <div className="jp-GpuPanel-buttons">
          <button
            className="jp-GpuPanel-button"
            disabled={busy || !!view?.busy}
            onClick={onRun}
            title="Record where the memory is allocated for a few steps, and name the line whose allocations are kept"
          >
            Find the leaking line
          </button>
        </div>
      )}
    </div>
  );
}

function ProbeHints(props: { probe: IProbeInfo | null }) {
  return (
    <>
      {probeHints(props.probe).map(h => (
        <div
          key={h.key}
          className={`jp-GpuPanel-hint jp-GpuPanel-small${h.warn ? ' jp-GpuPanel-hint-warn' : ''}`}
          data-hint={h.key}
        >
          <TextWithCode parts={codeParts(h.text)} />
        </div>
      ))}
    </>
  );
}

/**
 * What kernel and script rows share: the probe and leak stats (after any
 * stats of the row's own, passed as children), the probe's hints, the memory
 * chart with the forecast, and the triage block.
 */
function MemoryDetails(props: {
  subject: IMemorySubject;
  units: MemoryUnits;
  themeKey: string;
  probeRequested?: boolean;
  busy: boolean;
  onTriage: () => void;
  children?: React.ReactNode;
}) {
  const { subject, units, themeKey } = props;
  return (
    <>
      <dl className="jp-GpuPanel-stats">
        {props.children}
        <Stat
          label="Memory probe"
          value={probeText(subject.probe, !!props.probeRequested)}
        />
        <Stat label="Leak check" value={leakLine(subject.leak, units)} />
      </dl>
      <ProbeHints probe={subject.probe} />
      <MemoryChart k={subject} units={units} themeKey={themeKey} />
      <Triage
        k={subject}
        units={units}
        busy={props.busy}
        onRun={props.onTriage}
      />
    </>
  );
}

function isAlarm(subject: IMemorySubject): boolean {
  const leak = subject.leak;
  return !!(leak && leak.leak && leak.actionable);
}

/** A process outside any kernel running the memory probe (a training script, a torchrun rank). */
function ScriptRow(props: {
  s: IScriptInfo;
  store: GpuStore;
  units: MemoryUnits;
  actions: IPanelActions;
  themeKey: string;
}) {
  const { s, store, units, actions, themeKey } = props;
  const [busy, setBusy] = React.useState(false);
  const title = scriptTitle(s);
  const command = scriptCommand(s);
  const triage = async () => {
    setBusy(true);
    try {
      await store.scriptTriage(s.pid);
    } catch (err) {
      actions.notifyError(
        `triage failed for ${title}: ${(err as Error).message}`
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <li
      className={`jp-GpuPanel-kernel jp-GpuPanel-script${isAlarm(s) ? ' jp-GpuPanel-kernel-alarm' : ''}`}
      data-script-pid={s.pid}
      aria-label={`Script ${title}`}
    >
      <div className="jp-GpuPanel-kernelHead">
        <code className="jp-GpuPanel-scriptTitle" title={command || undefined}>
          {title}
        </code>
        <span className="jp-GpuPanel-muted jp-GpuPanel-small">
          {scriptDetail(s)}
        </span>
      </div>
      <MemoryDetails
        subject={s}
        units={units}
        themeKey={themeKey}
        busy={busy}
        onTriage={() => void triage()}
      />
    </li>
  );
}

function KernelRow(props: {
  k: IKernelInfo;
  store: GpuStore;
  units: MemoryUnits;
  actions: IPanelActions;
  themeKey: string;
}) {
  const { k, store, units, actions, themeKey } = props;
  const [busy, setBusy] = React.useState<string | null>(null);
  const [probeRequested, setProbeRequested] = React.useState(false);
  const label = k.notebook
    ? baseName(k.notebook)
    : `${k.kernel_name ?? 'kernel'} ${k.kernel_id.slice(0, 8)}`;
  const run = async (action: KernelAction) => {
    if (action === 'restart' || action === 'shutdown') {
      const verb = action === 'restart' ? 'Restart' : 'Shut down';
      const ok = await actions.confirm(
        `${verb} kernel?`,
        `${verb} the kernel of ${label}? Its variables will be lost.`,
        verb
      );
      if (!ok) {
        return;
      }
    }
    setBusy(action);
    try {
      await store.kernelAction(k.kernel_id, action);
      if (action === 'probe') {
        setProbeRequested(true);
      }
    } catch (err) {
      actions.notifyError(
        `${action} failed for ${label}: ${(err as Error).message}`
      );
    } finally {
      setBusy(null);
    }
  };
  return (
    <li
      className={`jp-GpuPanel-kernel${isAlarm(k) ? ' jp-GpuPanel-kernel-alarm' : ''}`}
      data-kernel-id={k.kernel_id}
      aria-label={`Kernel ${label}`}
    >
      <div className="jp-GpuPanel-kernelHead">
        {k.notebook ? (
          <button
            className="jp-GpuPanel-link"
            onClick={() => actions.openNotebook(k.notebook!)}
            title={`Open ${k.notebook}`}
          >
            {label}
          </button>
        ) : (
          <span>{label}</span>
        )}
        <span className="jp-GpuPanel-muted jp-GpuPanel-small">
          {k.kernel_name ?? ''} · {k.execution_state ?? 'unknown'}
        </span>
      </div>
      <MemoryDetails
        subject={k}
        units={units}
        themeKey={themeKey}
        probeRequested={probeRequested}
        busy={!!busy}
        onTriage={() => void run('triage')}
      >
        <Stat label="GPU memory" value={kernelMemoryText(k, units)} />
      </MemoryDetails>
      <div className="jp-GpuPanel-buttons">
        <button
          className="jp-GpuPanel-button"
          disabled={!!busy}
          onClick={() => void run('interrupt')}
        >
          Interrupt
        </button>
        <button
          className="jp-GpuPanel-button"
          disabled={!!busy}
          onClick={() => void run('restart')}
        >
          Restart
        </button>
        <button
          className="jp-GpuPanel-button"
          disabled={!!busy}
          onClick={() => void run('shutdown')}
        >
          Shut down
        </button>
        {!k.probe && !probeRequested && (
          <button
            className="jp-GpuPanel-button"
            disabled={!!busy}
            onClick={() => void run('probe')}
            title="Load a small memory probe into the kernel to follow its allocations per step"
          >
            Track memory
          </button>
        )}
      </div>
    </li>
  );
}

function Kernels(props: {
  store: GpuStore;
  units: MemoryUnits;
  actions: IPanelActions;
  themeKey: string;
}) {
  const s = props.store.state;
  const kernels = s.kernels ?? [];
  return (
    <section className="jp-GpuPanel-section" aria-label="Kernels">
      <h3 className="jp-GpuPanel-sectionTitle">Kernels</h3>
      {s.kernelsError && (
        <div className="jp-GpuPanel-muted jp-GpuPanel-small">
          {s.kernelsError}
        </div>
      )}
      {s.kernels === null ? (
        <div className="jp-GpuPanel-muted jp-GpuPanel-small">Loading…</div>
      ) : kernels.length === 0 ? (
        <div className="jp-GpuPanel-muted jp-GpuPanel-small">
          No running kernels.
        </div>
      ) : (
        <ul className="jp-GpuPanel-kernels">
          {kernels.map(k => (
            <KernelRow
              key={k.kernel_id}
              k={k}
              store={props.store}
              units={props.units}
              actions={props.actions}
              themeKey={props.themeKey}
            />
          ))}
        </ul>
      )}
      {s.scripts.length > 0 && (
        <>
          <h4 className="jp-GpuPanel-subTitle">Scripts</h4>
          <ul
            className="jp-GpuPanel-kernels jp-GpuPanel-scripts"
            aria-label="Scripts"
          >
            {s.scripts.map(sc => (
              <ScriptRow
                key={sc.pid}
                s={sc}
                store={props.store}
                units={props.units}
                actions={props.actions}
                themeKey={props.themeKey}
              />
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function Toolbar(props: {
  store: GpuStore;
  settings: IPanelSettings;
  actions: IPanelActions;
  showWindow: boolean;
}) {
  const { store, settings, actions, showWindow } = props;
  const s = store.state;
  const [template, setTemplate] = React.useState<string>('');
  const templates = s.benchmarks;
  const chosen = template || templates[0]?.name || '';
  const status = s.status;
  const source =
    status === null
      ? ''
      : status.source === 'replay'
        ? 'Recorded data'
        : [
            status.driver_version ? `Driver ${status.driver_version}` : null,
            status.cuda_driver_version
              ? `CUDA ${status.cuda_driver_version}`
              : null
          ]
            .filter(Boolean)
            .join(' · ');
  const every = s.effectiveInterval ?? status?.interval ?? null;
  return (
    <div className="jp-GpuPanel-toolbar">
      {showWindow && (
        <div className="jp-GpuPanel-toolbarRow">
          <div
            className="jp-GpuPanel-segmented"
            role="group"
            aria-label="Chart window"
          >
            {CHART_WINDOWS.map(w => (
              <button
                key={w}
                className="jp-GpuPanel-segment"
                aria-pressed={settings.chartWindow === w}
                onClick={() => actions.setChartWindow(w)}
              >
                {windowLabel(w)}
              </button>
            ))}
          </div>
          <span className="jp-GpuPanel-muted jp-GpuPanel-small" title={source}>
            {every !== null ? `every ${every} s` : ''}
          </span>
        </div>
      )}
      {templates.length > 0 && (
        <div className="jp-GpuPanel-toolbarRow">
          <select
            className="jp-GpuPanel-select"
            aria-label="Benchmark template"
            value={chosen}
            onChange={e => setTemplate(e.target.value)}
          >
            {templates.map(t => (
              <option key={t.name} value={t.name} title={t.description}>
                {t.title}
              </option>
            ))}
          </select>
          <button
            className="jp-GpuPanel-button"
            onClick={() => chosen && actions.createBenchmark(chosen)}
            title="Create a benchmark notebook in the current file browser folder"
          >
            New benchmark
          </button>
        </div>
      )}
    </div>
  );
}

export function PanelView(props: IPanelProps): JSX.Element {
  const { store, settings, themeKey, actions } = props;
  const s = store.state;
  const gpus = s.snapshot?.gpus ?? null;
  const view = deriveView({
    conn: s.conn,
    status: s.status,
    gpuCount: gpus === null ? null : gpus.length,
    lastDataT: s.snapshot?.t ?? null,
    now: Date.now()
  });

  // Runs after the children's effects (charts' setData), so the measure
  // covers message -> DOM + canvas.
  React.useEffect(() => {
    store.markTickRendered();
  });

  const me = serverUser(gpus ?? [], s.kernels);
  const stale = s.conn.phase !== 'live';
  return (
    <div
      className={`jp-GpuPanel-root${stale ? ' jp-GpuPanel-stale' : ''}`}
      data-phase={s.conn.phase}
      data-state={s.status?.state ?? ''}
      data-source={s.status?.source ?? ''}
    >
      <Toolbar
        store={store}
        settings={settings}
        actions={actions}
        showWindow={view.body === 'gpus' && settings.metrics.charts}
      />
      {view.banners.map((b, i) => (
        <Banner key={`${b.title}-${i}`} banner={b}>
          {b.retry && (
            <button
              className="jp-GpuPanel-button"
              onClick={() => store.retryNow()}
            >
              Retry now
            </button>
          )}
        </Banner>
      ))}
      {view.body !== 'gpus' && view.message && (
        <Banner banner={view.message} big>
          {view.message.retry && (
            <button
              className="jp-GpuPanel-button"
              onClick={() => store.retryNow()}
            >
              Retry now
            </button>
          )}
        </Banner>
      )}
      {view.body === 'gpus' &&
        gpus!.map(g => (
          <GpuCard
            key={g.index}
            gpu={g}
            device={s.devices.get(g.index)}
            series={s.series.get(g.index)}
            version={s.seriesVersion}
            settings={settings}
            themeKey={themeKey}
            me={me}
            actions={actions}
          />
        ))}
      {settings.metrics.kernels && (
        <Kernels
          store={store}
          units={settings.memoryUnits}
          actions={actions}
          themeKey={themeKey}
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
    icon: LabIcon
  ) {
    super();
    this.id = 'jp-gpu-panel';
    this.addClass('jp-GpuPanel');
    this.title.icon = icon;
    this.title.caption = 'GPU panel';
    this.title.label = '';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'GPU panel');
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
          />
        )}
      </UseSignal>
    );
  }
}
