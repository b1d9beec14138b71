/**
 * User settings (schema/plugin.json) as a typed object, with defaults and
 * clamping. Pure, so the clamping rules are unit-tested.
 */
import { MemoryUnits } from './format';

export interface IMetricsShown {
  utilization: boolean;
  memory: boolean;
  temperature: boolean;
  power: boolean;
  clocks: boolean;
  throttle: boolean;
  pcie: boolean;
  charts: boolean;
  processes: boolean;
  kernels: boolean;
}

export interface IPanelSettings {
  refreshInterval: number;
  chartWindow: number;
  memoryUnits: MemoryUnits;
  metrics: IMetricsShown;
  showOtherUsersProcesses: boolean;
  leakNotifications: boolean;
  leakForecastMinutes: number;
  statusBar: boolean;
}

export const CHART_WINDOWS = [60, 600, 3600] as const;

/** The server's documented floor; the server's own min_interval wins when known. */
export const MIN_INTERVAL = 0.1;

export const DEFAULT_SETTINGS: IPanelSettings = {
  refreshInterval: 1,
  chartWindow: 600,
  memoryUnits: 'GiB',
  metrics: {
    utilization: true,
    memory: true,
    temperature: true,
    power: true,
    clocks: true,
    throttle: true,
    pcie: false,
    charts: true,
    processes: true,
    kernels: true
  },
  showOtherUsersProcesses: true,
  leakNotifications: true,
  leakForecastMinutes: 30,
  statusBar: true
};

/** Never ask faster than the server allows, nor slower than a minute. */
export function clampInterval(
  seconds: unknown,
  serverMin?: number | null
): number {
  const floor = Math.max(MIN_INTERVAL, serverMin ?? MIN_INTERVAL);
  const v =
    typeof seconds === 'number' && Number.isFinite(seconds) ? seconds : 1;
  return Math.min(60, Math.max(floor, v));
}

export function parseSettings(
  raw: { [k: string]: unknown } | null | undefined
): IPanelSettings {
  const r = raw ?? {};
  const d = DEFAULT_SETTINGS;
  const win = Number(r.chartWindow);
  const metricsRaw = (r.metrics ?? {}) as { [k: string]: unknown };
  const metrics = { ...d.metrics };
  for (const k of Object.keys(metrics) as Array<keyof IMetricsShown>) {
    if (typeof metricsRaw[k] === 'boolean') {
      metrics[k] = metricsRaw[k] as boolean;
    }
  }
  const bool = (v: unknown, dflt: boolean) =>
    typeof v === 'boolean' ? v : dflt;
  const lf = Number(r.leakForecastMinutes);
  return {
    refreshInterval: clampInterval(r.refreshInterval ?? d.refreshInterval),
    chartWindow: (CHART_WINDOWS as readonly number[]).includes(win)
      ? win
      : d.chartWindow,
    memoryUnits: r.memoryUnits === 'GB' ? 'GB' : 'GiB',
    metrics,
    showOtherUsersProcesses: bool(
      r.showOtherUsersProcesses,
      d.showOtherUsersProcesses
    ),
    leakNotifications: bool(r.leakNotifications, d.leakNotifications),
    leakForecastMinutes:
      Number.isFinite(lf) && lf > 0 ? lf : d.leakForecastMinutes,
    statusBar: bool(r.statusBar, d.statusBar)
  };
}

export function windowLabel(seconds: number): string {
  return seconds >= 3600
    ? `${seconds / 3600} h`
    : seconds >= 60
      ? `${seconds / 60} min`
      : `${seconds} s`;
}
