/**
 * A node at a glance: one compact row per GPU (utilization, memory, power,
 * temperature, who holds it) above the detailed cards. A row's GPU button
 * opens that GPU's card.
 */
import * as React from 'react';

import { Meter } from '../components';
import { missingText } from '../format';
import { ITrans } from '../i18n';
import { MEM_WARN_PERCENT } from './card';
import { IOverviewRow } from './rows';

export function Overview(props: {
  rows: IOverviewRow[];
  expanded: ReadonlySet<number>;
  onSelect: (index: number) => void;
  replay: boolean;
  trans: ITrans;
}): JSX.Element {
  const { rows, expanded, replay, trans } = props;
  const word = (t: string) => missingText(t, replay, trans);
  return (
    <section
      className="jp-GpuPanel-overview"
      aria-label={trans.__('GPU overview')}
      data-gpus={rows.length}
    >
      <div
        className="jp-GpuPanel-overviewRow jp-GpuPanel-overviewHead"
        aria-hidden="true"
      >
        <span>#</span>
        <span>{trans.__('Util')}</span>
        <span>{trans.__('Memory')}</span>
        <span className="jp-GpuPanel-num">{trans.__('Power')}</span>
        <span className="jp-GpuPanel-num">{trans.__('Temp')}</span>
      </div>
      <ol className="jp-GpuPanel-overviewList">
        {rows.map(r => (
          <li
            key={r.index}
            className={`jp-GpuPanel-overviewItem${r.state !== 'ok' ? ' jp-GpuPanel-overviewItem-bad' : ''}`}
            data-gpu-index={r.index}
            aria-label={trans.__('GPU %1: %2', r.index, r.name)}
          >
            <div className="jp-GpuPanel-overviewRow">
              <button
                className="jp-GpuPanel-link jp-GpuPanel-overviewIndex"
                aria-expanded={expanded.has(r.index)}
                title={trans.__('%1: show its card', r.name)}
                onClick={() => props.onSelect(r.index)}
              >
                {r.index}
              </button>
              <span className="jp-GpuPanel-overviewCell" data-testid="ov-util">
                <span className="jp-GpuPanel-value">{word(r.utilText)}</span>
                <Meter
                  label={trans.__('Utilization')}
                  percent={r.util}
                  text={r.utilText}
                  thin
                />
              </span>
              <span className="jp-GpuPanel-overviewCell" data-testid="ov-mem">
                <span className="jp-GpuPanel-value">{word(r.memText)}</span>
                <Meter
                  label={trans.__('Memory')}
                  percent={r.memPercent}
                  text={r.memText}
                  warnAt={MEM_WARN_PERCENT}
                  thin
                />
              </span>
              <span
                className="jp-GpuPanel-value jp-GpuPanel-num"
                data-testid="ov-power"
              >
                {word(r.powerText)}
              </span>
              <span
                className="jp-GpuPanel-value jp-GpuPanel-num"
                data-testid="ov-temp"
              >
                {word(r.tempText)}
              </span>
            </div>
            <div
              className={`jp-GpuPanel-overviewHolders jp-GpuPanel-small${
                r.holders.count ? '' : ' jp-GpuPanel-muted'
              }`}
              title={r.holders.title}
              data-testid="ov-holders"
            >
              {r.state !== 'ok' ? `${r.state} · ` : ''}
              {r.holders.text}
            </div>
          </li>
        ))}
      </ol>
    </section>
  );
}
