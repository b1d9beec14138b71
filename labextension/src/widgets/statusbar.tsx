/**
 * Status bar item: "GPU 63% · 12.4/79.6 GiB" for the busiest GPU; click
 * opens the panel. Reads the same store as the panel (no second socket).
 */
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import * as React from 'react';

import {
  formatMemoryPair,
  formatPercent,
  MemoryUnits,
  statusBarText
} from '../format';
import { deriveView } from '../state';
import { GpuStore } from '../store';

function tooltip(
  store: GpuStore,
  units: MemoryUnits,
  fallback: string | null
): string {
  const s = store.state;
  const gpus = s.snapshot?.gpus ?? [];
  const lines = gpus.map(g => {
    const name = s.devices.get(g.index)?.name ?? '';
    return `GPU ${g.index} ${name}: ${formatPercent(g.util_gpu)}, ${formatMemoryPair(
      g.mem_used,
      g.mem_total,
      units
    )}${g.state !== 'ok' ? ` (${g.state})` : ''}`;
  });
  if (s.status?.source === 'replay') {
    lines.push('Recorded data (replay)');
  }
  if (!lines.length && fallback) {
    lines.push(fallback);
  }
  lines.push('Click to open the GPU panel');
  return lines.join('\n');
}

export class GpuStatusItem extends ReactWidget {
  constructor(
    private _store: GpuStore,
    private _getUnits: () => MemoryUnits,
    private _open: () => void
  ) {
    super();
    this.addClass('jp-GpuPanel-status');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this._store.changed}>
        {() => {
          const s = this._store.state;
          const units = this._getUnits();
          const view = deriveView({
            conn: s.conn,
            status: s.status,
            gpuCount: s.snapshot ? s.snapshot.gpus.length : null,
            lastDataT: s.snapshot?.t ?? null,
            now: Date.now()
          });
          const text =
            view.body === 'gpus'
              ? statusBarText(s.snapshot!.gpus, units)
              : (view.shortText ?? 'GPU');
          const detail = view.message ? view.message.title : null;
          const stale = s.conn.phase !== 'live' && view.body === 'gpus';
          return (
            <span
              className={`jp-StatusBar-TextItem jp-GpuPanel-statusText${stale ? ' jp-GpuPanel-stale' : ''}`}
              role="button"
              tabIndex={0}
              title={tooltip(this._store, units, detail)}
              aria-label={`${text}. Open the GPU panel`}
              data-testid="gpu-status"
              onClick={() => this._open()}
              onKeyDown={e => {
                if (e.key === 'Enter' || e.key === ' ') {
                  e.preventDefault();
                  this._open();
                }
              }}
            >
              {text}
            </span>
          );
        }}
      </UseSignal>
    );
  }
}
