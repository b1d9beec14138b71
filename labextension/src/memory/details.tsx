/**
 * What kernel and script rows share: the probe and leak stats, a run's
 * out-of-memory failure (what held the memory, what to do), the probe's
 * hints, the memory chart with the OOM forecast, and the triage block
 * ("Find the leaking line" and its result in the server's ranking).
 */
import { searchIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IChartLine, TimeChart } from '../chart';
import { Stat, TextWithCode } from '../components';
import { plainFmt } from '../gpus/charts';
import { MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { IMemorySubject } from '../types';
import {
  formatStep,
  IKernelChart,
  kernelChart,
  kernelLineLabel,
  KernelLineKey
} from './chart';
import { oomView } from './oom';
import {
  canTriage,
  codeParts,
  leakLine,
  probeHints,
  triageView
} from './words';

/** Colour and dash of each kernel chart line; --jp-* variables only. */
const LINE_STYLE: { [k in KernelLineKey]: Omit<IChartLine, 'label'> } = {
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

function chartLines(chart: IKernelChart, trans: ITrans): IChartLine[] {
  return chart.lines.map(key => ({
    label: kernelLineLabel(key, trans),
    ...LINE_STYLE[key],
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
  trans: ITrans;
}): JSX.Element | null {
  const { k, units, themeKey, trans } = props;
  // Each kernels document brings a new k: recomputed when it changes, a few hundred points.
  const chart = React.useMemo(
    () => kernelChart(k, units, trans),
    [k, units, trans]
  );
  const lines = React.useMemo(
    () => (chart ? chartLines(chart, trans) : []),
    [chart, trans]
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
        trans={trans}
        height={80}
        xTime={chart.axis === 'time'}
        xFormat={formatStep}
      />
    </div>
  );
}

/** "Find the leaking line": the button and the latest triage result, stacks in the server's order. */
function Triage(props: {
  k: IMemorySubject;
  units: MemoryUnits;
  busy: boolean;
  onRun: () => void;
  trans: ITrans;
}): JSX.Element | null {
  const { k, units, busy, onRun, trans } = props;
  const view = triageView(k.probe?.triage, units, trans);
  const offer = canTriage(k);
  if (!view && !offer) {
    return null;
  }
  return (
    <div
      className="jp-GpuPanel-triage"
      aria-label={trans.__('Leak triage')}
      role="group"
    >
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
          aria-label={trans.__('Growing allocations')}
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
          <ToolbarButtonComponent
            className="jp-GpuPanel-action"
            icon={searchIcon}
            label={trans.__('Find the leaking line')}
            enabled={!busy && !view?.busy}
            onClick={onRun}
            tooltip={trans.__(
              'Record where the memory is allocated for a few steps, and name the line whose allocations are kept'
            )}
          />
        </div>
      )}
    </div>
  );
}

/** The run ran out of memory: the lines that held it and what to do. */
function OutOfMemory(props: {
  k: IMemorySubject;
  units: MemoryUnits;
  trans: ITrans;
}): JSX.Element | null {
  const { k, units, trans } = props;
  const view = oomView(k.leak, units, trans);
  if (!view) {
    return null;
  }
  return (
    <div
      className="jp-GpuPanel-oom jp-GpuPanel-hint jp-GpuPanel-hint-warn jp-GpuPanel-small"
      role="alert"
      aria-label={trans.__('Out of GPU memory')}
    >
      <div className="jp-GpuPanel-oomMessage">
        <TextWithCode parts={view.parts} />
      </div>
      {view.holders.length > 0 && (
        <ol
          className="jp-GpuPanel-stacks"
          aria-label={trans.__('What held the memory')}
        >
          {view.holders.map((h, i) => (
            <li
              key={i}
              className={h.model ? 'jp-GpuPanel-muted' : undefined}
              data-model={h.model ? 'true' : 'false'}
            >
              <div className="jp-GpuPanel-stackHead">
                <span>
                  <TextWithCode parts={h.parts} />
                </span>
                <span className="jp-GpuPanel-num">{h.bytes}</span>
              </div>
            </li>
          ))}
        </ol>
      )}
      {view.advice.length > 0 && (
        <ul
          className="jp-GpuPanel-oomAdvice"
          aria-label={trans.__('What to do')}
        >
          {view.advice.map((a, i) => (
            <li key={i}>
              <TextWithCode parts={a} />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function MemoryDetails(props: {
  subject: IMemorySubject;
  units: MemoryUnits;
  themeKey: string;
  probeText: string;
  busy: boolean;
  onTriage: () => void;
  trans: ITrans;
  /** Stats of the row's own, before the probe and leak stats. */
  children?: React.ReactNode;
}): JSX.Element {
  const { subject, units, themeKey, trans } = props;
  return (
    <>
      <dl className="jp-GpuPanel-stats">
        {props.children}
        <Stat
          label={trans.__('Memory probe')}
          value={props.probeText}
          testId="probe"
        />
        <Stat
          label={trans.__('Leak check')}
          value={leakLine(subject.leak, units, trans)}
        />
      </dl>
      <OutOfMemory k={subject} units={units} trans={trans} />
      {probeHints(subject.probe).map(h => (
        <div
          key={h.key}
          className={`jp-GpuPanel-hint jp-GpuPanel-small${h.warn ? ' jp-GpuPanel-hint-warn' : ''}`}
          data-hint={h.key}
        >
          <TextWithCode parts={codeParts(h.text)} />
        </div>
      ))}
      <MemoryChart
        k={subject}
        units={units}
        themeKey={themeKey}
        trans={trans}
      />
      <Triage
        k={subject}
        units={units}
        busy={props.busy}
        onRun={props.onTriage}
        trans={trans}
      />
    </>
  );
}
