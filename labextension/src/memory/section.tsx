/**
 * The Kernels section: a line per kernel the server shut down for sitting
 * idle on GPU memory (the newest few), a row per running kernel and, below,
 * a row per probed script. The list comes from the stream (pushed when it
 * changes); Refresh asks the server to re-read it now.
 */
import { refreshIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import * as React from 'react';

import { clockTime, MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { ICulledKernel, IKernelInfo, IScriptInfo } from '../types';
import { culledLine, recentCulled } from './idle';
import { Confirm, IKernelControl, KernelRow } from './kernelrow';
import { ScriptRow } from './scriptrow';

export function KernelsSection(props: {
  kernels: IKernelInfo[] | null;
  scripts: IScriptInfo[];
  /** Kernels the server shut down for sitting idle on GPU memory (newest last). */
  culled?: ICulledKernel[];
  error: string | null;
  units: MemoryUnits;
  themeKey: string;
  control: IKernelControl;
  confirm: Confirm;
  onOpenNotebook: (path: string, kernelId?: string | null) => void;
  onScriptTriage: (pid: number) => Promise<unknown>;
  onRefresh: () => Promise<void>;
  trans: ITrans;
}): JSX.Element {
  const { kernels, scripts, units, themeKey, trans } = props;
  const [refreshing, setRefreshing] = React.useState(false);
  const culled = recentCulled(props.culled);
  const refresh = async () => {
    setRefreshing(true);
    try {
      await props.onRefresh();
    } finally {
      setRefreshing(false);
    }
  };
  return (
    <section className="jp-GpuPanel-section" aria-label={trans.__('Kernels')}>
      <div className="jp-GpuPanel-sectionHead">
        <h3 className="jp-GpuPanel-sectionTitle">{trans.__('Kernels')}</h3>
        <ToolbarButtonComponent
          icon={refreshIcon}
          tooltip={trans.__('Refresh the kernels list')}
          enabled={!refreshing}
          onClick={() => void refresh()}
        />
      </div>
      {props.error && (
        <div className="jp-GpuPanel-muted jp-GpuPanel-small" role="alert">
          {props.error}
        </div>
      )}
      {culled.length > 0 && (
        <ul
          className="jp-GpuPanel-culled"
          aria-label={trans.__('Kernels shut down for sitting idle')}
        >
          {culled.map(c => (
            <li
              key={`${c.kernel_id}-${c.t}`}
              className="jp-GpuPanel-hint jp-GpuPanel-hint-warn jp-GpuPanel-small"
              data-kernel-id={c.kernel_id}
              title={trans.__(
                'The server shut this kernel down at %1 for sitting idle while holding GPU memory',
                clockTime(c.t)
              )}
            >
              {culledLine(c, units, trans)}
            </li>
          ))}
        </ul>
      )}
      {kernels === null ? (
        <div className="jp-GpuPanel-muted jp-GpuPanel-small">
          {trans.__('Loading…')}
        </div>
      ) : kernels.length === 0 ? (
        <div className="jp-GpuPanel-muted jp-GpuPanel-small">
          {trans.__('No running kernels.')}
        </div>
      ) : (
        <ul className="jp-GpuPanel-kernels">
          {kernels.map(k => (
            <KernelRow
              key={k.kernel_id}
              k={k}
              units={units}
              themeKey={themeKey}
              control={props.control}
              confirm={props.confirm}
              onOpenNotebook={props.onOpenNotebook}
              trans={trans}
            />
          ))}
        </ul>
      )}
      {scripts.length > 0 && (
        <>
          <h4 className="jp-GpuPanel-subTitle">{trans.__('Scripts')}</h4>
          <ul
            className="jp-GpuPanel-kernels jp-GpuPanel-scripts"
            aria-label={trans.__('Scripts')}
          >
            {scripts.map(sc => (
              <ScriptRow
                key={sc.pid}
                s={sc}
                units={units}
                themeKey={themeKey}
                onTriage={props.onScriptTriage}
                trans={trans}
              />
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
