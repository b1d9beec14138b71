/**
 * A GPU card's four time charts (utilization, memory, power, temperature)
 * over the chosen window, from the store's columnar series.
 */
import * as React from 'react';

import { IChartLine, TimeChart } from '../chart';
import { MemoryUnits, unitBytes } from '../format';
import { ISeries, windowData } from '../history';
import { ITrans } from '../i18n';
import { IMetricsShown } from '../settings';

/** Axis and legend values: whole from 100 up, one decimal below, then the unit. */
export const unitFmt =
  (unit: string) =>
  (v: number): string =>
    `${v >= 100 ? Math.round(v) : Math.round(v * 10) / 10}${unit}`;
const percentFmt = unitFmt('%');
export const plainFmt = unitFmt('');

function lines(trans: ITrans) {
  const util: IChartLine[] = [
    {
      label: trans.__('GPU'),
      colorVar: '--jp-brand-color1',
      fallback: '#1976d2'
    },
    {
      label: trans.__('Mem bus'),
      colorVar: '--jp-accent-color1',
      fallback: '#388e3c'
    }
  ];
  const mem: IChartLine[] = [
    {
      label: trans.__('Used'),
      colorVar: '--jp-brand-color1',
      fallback: '#1976d2'
    }
  ];
  const power: IChartLine[] = [
    {
      label: trans.__('Draw'),
      colorVar: '--jp-warn-color1',
      fallback: '#f57c00'
    }
  ];
  const temp: IChartLine[] = [
    {
      label: trans.__('GPU'),
      colorVar: '--jp-warn-color0',
      fallback: '#e65100'
    }
  ];
  return { util, mem, power, temp };
}

export function GpuCharts(props: {
  series: ISeries | undefined;
  version: number;
  windowSeconds: number;
  units: MemoryUnits;
  memTotal: number | null;
  powerLimitMw: number | null;
  metrics: IMetricsShown;
  themeKey: string;
  trans: ITrans;
}): JSX.Element | null {
  const { series, version, windowSeconds, units, memTotal, metrics: m } = props;
  const { themeKey, trans } = props;
  const chartLines = React.useMemo(() => lines(trans), [trans]);
  const data = React.useMemo(() => {
    if (!series) {
      return null;
    }
    return {
      util: windowData(series, ['util_gpu', 'util_mem'], windowSeconds),
      mem: windowData(series, ['mem_used'], windowSeconds, {
        mem_used: unitBytes(units)
      }),
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
          title={trans.__('Utilization')}
          data={data.util}
          lines={chartLines.util}
          yMin={0}
          yMax={100}
          format={percentFmt}
          themeKey={themeKey}
          trans={trans}
        />
      )}
      {m.memory && (
        <TimeChart
          title={trans.__('Memory (%1)', units)}
          data={data.mem}
          lines={chartLines.mem}
          yMin={0}
          yMax={memMax}
          format={plainFmt}
          themeKey={themeKey}
          trans={trans}
        />
      )}
      {m.power && (
        <TimeChart
          title={trans.__('Power (W)')}
          data={data.power}
          lines={chartLines.power}
          yMin={0}
          yMax={props.powerLimitMw ? props.powerLimitMw / 1000 : null}
          format={plainFmt}
          themeKey={themeKey}
          trans={trans}
        />
      )}
      {m.temperature && (
        <TimeChart
          title={trans.__('Temperature (°C)')}
          data={data.temp}
          lines={chartLines.temp}
          yMin={0}
          yMax={null}
          format={plainFmt}
          themeKey={themeKey}
          trans={trans}
        />
      )}
    </div>
  );
}
