/**
 * The summary item: "GPU 63% · 12.4/79.6 GiB" for one GPU, "8 GPUs 41% ·
 * 160/637 GiB" for several, "Replay · ..." for a recording; click opens the
 * panel. In JupyterLab's status bar, or Notebook 7's top bar (no status
 * bar there). Reads the same store as the panel (no second socket).
 */
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import * as React from 'react';

import { MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { deriveView } from '../banners';
import { GpuStore } from '../store';
import { statusSummary } from './summary';

export function StatusText(props: {
  text: string;
  tooltip: string;
  replay: boolean;
  stale: boolean;
  openLabel: string;
  onOpen: () => void;
}): JSX.Element {
  const { text, replay, stale } = props;
  return (
    <span
      className={`jp-StatusBar-TextItem jp-GpuPanel-statusText${stale ? ' jp-GpuPanel-stale' : ''}${
        replay ? ' jp-GpuPanel-statusText-replay' : ''
      }`}
      role="button"
      tabIndex={0}
      title={props.tooltip}
      aria-label={`${text}. ${props.openLabel}`}
      data-testid="gpu-status"
      data-replay={replay}
      onClick={props.onOpen}
      onKeyDown={e => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          props.onOpen();
        }
      }}
    >
      {text}
    </span>
  );
}

export class GpuStatusItem extends ReactWidget {
  constructor(
    private _store: GpuStore,
    private _getUnits: () => MemoryUnits,
    private _open: () => void,
    private _trans: ITrans
  ) {
    super();
    this.addClass('jp-GpuPanel-status');
  }

  render(): JSX.Element {
    const trans = this._trans;
    return (
      <UseSignal signal={this._store.changed}>
        {() => {
          const s = this._store.state;
          const units = this._getUnits();
          const view = deriveView(
            {
              conn: s.conn,
              status: s.status,
              gpuCount: s.snapshot ? s.snapshot.gpus.length : null,
              lastDataT: s.snapshot?.t ?? null,
              now: Date.now()
            },
            trans
          );
          const replay = s.status?.source === 'replay';
          const names = new Map<number, string>();
          s.devices.forEach((d, i) => d.name && names.set(i, d.name));
          const summary =
            view.body === 'gpus'
              ? statusSummary(s.snapshot!.gpus, units, replay, names, trans)
              : null;
          const tooltip = summary
            ? [...summary.tooltip]
            : view.message
              ? [view.message.title]
              : [];
          tooltip.push(trans.__('Click to open the GPU panel'));
          return (
            <StatusText
              text={summary?.text ?? view.shortText ?? trans.__('GPU')}
              tooltip={tooltip.join('\n')}
              replay={!!summary?.replay}
              stale={s.conn.phase !== 'live' && view.body === 'gpus'}
              openLabel={trans.__('Open the GPU panel')}
              onOpen={this._open}
            />
          );
        }}
      </UseSignal>
    );
  }
}
