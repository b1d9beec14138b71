/**
 * One GPU's detailed card: gauges, stats, charts and processes. It
 * collapses to its header (name and a one-line summary); collapsed, it
 * draws no charts, which keeps a tick cheap on an 8-GPU node.
 */
import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { Meter, Stat } from '../components';
import {
  clocksText,
  formatKbps,
  formatMemoryPair,
  formatPercent,
  formatPower,
  formatTemp,
  memoryPercent,
  MemoryUnits,
  missingText,
  throttleText
} from '../format';
import { ISeries } from '../history';
import { ITrans } from '../i18n';
import { IMetricsShown } from '../settings';
import { gpuStateText } from '../banners';
import { IDeviceInfo, IGpuReading, IProcessReading } from '../types';
import { GpuCharts } from './charts';
import { ProcessTable } from './processes';

/** Memory this full draws the bar in the warning colour. */
export const MEM_WARN_PERCENT = 95;

export interface ICardOptions {
  metrics: IMetricsShown;
  units: MemoryUnits;
  chartWindow: number;
  themeKey: string;
  /** The numbers are a recording: say so, and "not recorded" for what it lacks. */
  replay: boolean;
}

export function GpuCard(props: {
  gpu: IGpuReading;
  device: IDeviceInfo | undefined;
  series: ISeries | undefined;
  version: number;
  options: ICardOptions;
  expanded: boolean;
  onToggle: (index: number) => void;
  processes: { shown: IProcessReading[]; hidden: number };
  onOpenNotebook: (path: string, kernelId?: string | null) => void;
  trans: ITrans;
}): JSX.Element {
  const { gpu, device, options, expanded, trans } = props;
  const { metrics: m, units, replay } = options;
  const word = (text: string) => missingText(text, replay, trans);
  const name = device?.name || trans.__('GPU %1', gpu.index);
  const stateText = gpuStateText(gpu.state, gpu.error, trans);
  const memPct = memoryPercent(gpu.mem_used, gpu.mem_total);
  const powerLimit = gpu.power_limit_mw ?? device?.power_limit_mw ?? null;
  const utilText = word(formatPercent(gpu.util_gpu));
  const memText = word(
    `${formatMemoryPair(gpu.mem_used, gpu.mem_total, units)}${
      memPct === null ? '' : ` (${Math.round(memPct)}%)`
    }`
  );
  const bodyId = `jp-GpuPanel-card-body-${gpu.index}`;
  const Caret = expanded ? caretDownIcon : caretRightIcon;
  return (
    <section
      className={`jp-GpuPanel-card${gpu.state !== 'ok' ? ' jp-GpuPanel-card-bad' : ''}${
        expanded ? '' : ' jp-GpuPanel-card-collapsed'
      }`}
      aria-label={trans.__('GPU %1: %2', gpu.index, name)}
      data-gpu-index={gpu.index}
      data-mem-used={gpu.mem_used ?? ''}
      data-t={gpu.t}
      data-expanded={expanded}
    >
      <header className="jp-GpuPanel-cardHead">
        <button
          className="jp-GpuPanel-cardToggle"
          aria-expanded={expanded}
          aria-controls={bodyId}
          title={expanded ? trans.__('Collapse') : trans.__('Show details')}
          onClick={() => props.onToggle(gpu.index)}
        >
          <Caret.react tag="span" elementSize="small" />
          <span className="jp-GpuPanel-gpuIndex">
            {trans.__('GPU %1', gpu.index)}
          </span>
          <span className="jp-GpuPanel-gpuName" data-testid="gpu-name">
            {name}
          </span>
        </button>
        {replay && (
          <span
            className="jp-GpuPanel-badge"
            title={trans.__('Recorded data (replay)')}
          >
            {trans.__('recorded')}
          </span>
        )}
        {!expanded && (
          <span className="jp-GpuPanel-muted jp-GpuPanel-small jp-GpuPanel-cardSummary">
            {utilText} ·{' '}
            {word(formatMemoryPair(gpu.mem_used, gpu.mem_total, units))}
          </span>
        )}
      </header>
      {stateText && (
        <div
          className="jp-GpuPanel-banner jp-GpuPanel-banner-error"
          role="alert"
        >
          {stateText}
        </div>
      )}
      {expanded && (
        <div id={bodyId} className="jp-GpuPanel-cardBody">
          {(m.utilization || m.memory) && (
            <div className="jp-GpuPanel-gauges">
              {m.utilization && (
                <div className="jp-GpuPanel-gauge">
                  <div className="jp-GpuPanel-gaugeHead">
                    <span className="jp-GpuPanel-label">
                      {trans.__('Utilization')}
                    </span>
                    <span className="jp-GpuPanel-value" data-testid="util">
                      {utilText}
                    </span>
                  </div>
                  <Meter
                    label={trans.__('Utilization')}
                    percent={gpu.util_gpu ?? null}
                    text={utilText}
                  />
                </div>
              )}
              {m.memory && (
                <div className="jp-GpuPanel-gauge">
                  <div className="jp-GpuPanel-gaugeHead">
                    <span className="jp-GpuPanel-label">
                      {trans.__('Memory')}
                    </span>
                    <span className="jp-GpuPanel-value" data-testid="mem">
                      {memText}
                    </span>
                  </div>
                  <Meter
                    label={trans.__('Memory')}
                    percent={memPct}
                    text={memText}
                    warnAt={MEM_WARN_PERCENT}
                  />
                </div>
              )}
            </div>
          )}
          <dl className="jp-GpuPanel-stats">
            {m.temperature && (
              <Stat
                label={trans.__('Temperature')}
                value={word(formatTemp(gpu.temp_c))}
                testId="temp"
              />
            )}
            {m.power && (
              <Stat
                label={trans.__('Power')}
                value={word(formatPower(gpu.power_mw, powerLimit))}
                testId="power"
              />
            )}
            {m.clocks && (
              <Stat
                label={trans.__('Clocks')}
                value={word(clocksText(gpu.clock_sm, gpu.clock_mem))}
                testId="clocks"
              />
            )}
            {m.throttle && (
              <Stat
                label={trans.__('Throttling')}
                value={word(throttleText(gpu.throttle_reasons, trans))}
                testId="throttle"
              />
            )}
            {m.pcie && (
              <Stat
                label={trans.__('PCIe')}
                value={`TX ${word(formatKbps(gpu.pcie_tx_kbps))} · RX ${word(
                  formatKbps(gpu.pcie_rx_kbps)
                )}`}
              />
            )}
            {gpu.fan_pct !== null && gpu.fan_pct !== undefined && (
              <Stat
                label={trans.__('Fan')}
                value={formatPercent(gpu.fan_pct)}
              />
            )}
          </dl>
          {m.charts && (
            <GpuCharts
              series={props.series}
              version={props.version}
              windowSeconds={options.chartWindow}
              units={units}
              memTotal={gpu.mem_total ?? device?.memory_total ?? null}
              powerLimitMw={powerLimit}
              metrics={m}
              themeKey={options.themeKey}
              trans={trans}
            />
          )}
          {m.processes && (
            <ProcessTable
              gpuIndex={gpu.index}
              shown={props.processes.shown}
              hidden={props.processes.hidden}
              units={units}
              onOpenNotebook={props.onOpenNotebook}
              trans={trans}
            />
          )}
        </div>
      )}
    </section>
  );
}
