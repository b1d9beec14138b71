/**
 * A small time-series chart: a thin React wrapper over one uPlot instance.
 * uPlot draws on canvas, so its colours are read from the --jp-* variables
 * at creation; a theme change recreates the chart (themeKey).
 */
import * as React from 'react';
import uPlot from 'uplot';

import { niceCeil } from './format';
import { legendValue } from './history';
import { ITrans, plainTrans } from './i18n';

export interface IChartLine {
  label: string;
  /** A --jp-* variable name for the stroke. */
  colorVar: string;
  /** Fallback colour if the variable is missing (it never is in Lab). */
  fallback: string;
  /** Canvas dash pattern in px, e.g. [4, 3] (a forecast, a limit). */
  dash?: number[];
  /** Stroke width in px; 1.5 by default. */
  width?: number;
  /** Join points across nulls (series merged on a shared x); false by default. */
  spanGaps?: boolean;
  /** Legend shows the last non-null value rather than the last sample. */
  legendLastValid?: boolean;
}

export interface IChartProps {
  title: string;
  /** [x, ...one column per line]; x is unix seconds unless xTime is false. */
  data: Array<Array<number | null>>;
  lines: IChartLine[];
  /** Fixed y range; null end = auto. */
  yMin?: number;
  yMax?: number | null;
  /** Axis and legend value formatter. */
  format: (v: number) => string;
  /** Changes when the theme changes, to re-read the colours. */
  themeKey: string;
  height?: number;
  /** false: a numeric x axis (optimizer steps), integer ticks; true by default. */
  xTime?: boolean;
  /** Tick labels for a numeric x axis. */
  xFormat?: (v: number) => string;
  trans?: ITrans;
}

/** 1, 2, 5, 10, 20, 50, ...: integer tick steps for a numeric x axis. */
const INTEGER_INCRS: number[] = [];
for (let p = 1; p <= 1e12; p *= 10) {
  INTEGER_INCRS.push(p, 2 * p, 5 * p);
}
/** Time ticks at whole seconds and up: a chart spanning under a second (a kernel just seen)
 * would otherwise be labelled in milliseconds (":52.000 :52.500"). */
const TIME_INCRS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, 86400
];

function cssVar(el: Element, name: string, fallback: string): string {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

export function TimeChart(props: IChartProps): JSX.Element {
  const holder = React.useRef<HTMLDivElement>(null);
  const plot = React.useRef<uPlot | null>(null);
  const { title, data, lines, yMin, yMax, format, themeKey, xFormat } = props;
  const height = props.height ?? 96;
  const xTime = props.xTime ?? true;
  // Recreate when the line set changes (a forecast appears), not on each data change.
  const linesKey = lines
    .map(
      l =>
        `${l.label}:${l.colorVar}:${(l.dash ?? []).join(',')}:${l.spanGaps ? 1 : 0}`
    )
    .join('|');

  // Create (and recreate on theme/shape change).
  React.useEffect(() => {
    const el = holder.current;
    if (!el) {
      return;
    }
    const axisColor = cssVar(el, '--jp-ui-font-color2', '#616161');
    const gridColor = cssVar(el, '--jp-border-color2', '#e0e0e0');
    const font = `10px ${cssVar(el, '--jp-ui-font-family', 'sans-serif')}`;
    const width = Math.max(120, el.clientWidth || 240);
    const opts: uPlot.Options = {
      width,
      height,
      legend: { show: false },
      cursor: { show: true, x: true, y: false, points: { show: false } },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      scales: {
        x: { time: xTime },
        y: {
          range: (_u, dmin, dmax) => {
            const lo = yMin ?? Math.min(0, dmin);
            const hi = yMax ?? niceCeil(dmax > lo ? dmax * 1.1 : lo + 1);
            return [lo, hi];
          }
        }
      },
      axes: [
        {
          stroke: axisColor,
          grid: { stroke: gridColor, width: 1 },
          ticks: { stroke: gridColor, width: 1 },
          font,
          size: 24,
          ...(xTime
            ? { incrs: TIME_INCRS }
            : {
                incrs: INTEGER_INCRS,
                values: (_u: uPlot, splits: number[]) =>
                  splits.map(v => (xFormat ? xFormat(v) : String(v)))
              })
        },
        {
          stroke: axisColor,
          grid: { stroke: gridColor, width: 1 },
          ticks: { show: false },
          font,
          size: 44,
          // Small charts: label bottom, middle and top only, always.
          splits: (_u, _axis, min, max) => [min, (min + max) / 2, max],
          values: (_u, splits) => splits.map(v => format(v))
        }
      ],
      series: [
        {},
        ...lines.map(l => ({
          label: l.label,
          stroke: cssVar(el, l.colorVar, l.fallback),
          width: l.width ?? 1.5,
          ...(l.dash ? { dash: l.dash } : {}),
          points: { show: false },
          spanGaps: l.spanGaps ?? false
        }))
      ]
    };
    const u = new uPlot(opts, data as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 1) {
        u.setSize({ width: w, height });
      }
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- data reaches the chart through the effect below, lines through linesKey, and format/xFormat are new closures each render: depending on them would recreate the chart every tick
  }, [themeKey, linesKey, height, yMax, yMin, xTime]);

  React.useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);

  const trans = props.trans ?? plainTrans;
  const n = data[0]?.length ?? 0;
  const lastT = n ? data[0][n - 1] : null;
  const summary = lines
    .map((l, i) => {
      const v = legendValue(data[i + 1] ?? [], l.legendLastValid);
      return `${l.label} ${v === null ? trans.__('n/a') : format(v)}`;
    })
    .join(', ');

  return (
    <figure
      className="jp-GpuPanel-chart"
      role="img"
      aria-label={trans.__('%1 chart: now %2', title, summary)}
      data-points={n}
      data-first-t={n ? (data[0][0] ?? '') : ''}
      data-last-t={lastT ?? ''}
    >
      <figcaption className="jp-GpuPanel-chartTitle">
        <span>{title}</span>
        <span className="jp-GpuPanel-legend">
          {lines.map((l, i) => {
            const v = legendValue(data[i + 1] ?? [], l.legendLastValid);
            return (
              <span key={l.label} className="jp-GpuPanel-legendItem">
                <span
                  className={`jp-GpuPanel-swatch${l.dash ? ' jp-GpuPanel-swatch-dashed' : ''}`}
                  style={
                    l.dash
                      ? { borderColor: `var(${l.colorVar})` }
                      : { background: `var(${l.colorVar})` }
                  }
                />
                {l.label} {v === null ? trans.__('n/a') : format(v)}
              </span>
            );
          })}
        </span>
      </figcaption>
      <div ref={holder} className="jp-GpuPanel-plot" />
    </figure>
  );
}
