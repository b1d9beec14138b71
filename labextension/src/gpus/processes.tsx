/**
 * A GPU card's process table: pid, user, memory and the owner (the notebook
 * behind a kernel's process, as a link). Which processes show is decided
 * by `visibleProcesses` (rows.ts).
 */
import * as React from 'react';

import { baseName, formatBytes, MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { IProcessReading } from '../types';

function OwnerCell(props: {
  p: IProcessReading;
  onOpenNotebook: (path: string, kernelId?: string | null) => void;
  trans: ITrans;
}): JSX.Element {
  const { p, trans } = props;
  const o = p.owner;
  if (!o) {
    return <span className="jp-GpuPanel-muted">{p.name || '—'}</span>;
  }
  if (o.kind === 'kernel') {
    const nb = o.notebook;
    if (nb) {
      return (
        <button
          className="jp-GpuPanel-link"
          title={trans.__('Open %1', nb)}
          aria-label={trans.__('Open notebook %1', nb)}
          onClick={() => props.onOpenNotebook(nb, o.kernel_id)}
        >
          {baseName(nb)}
        </button>
      );
    }
    return (
      <span>
        {o.kernel_name
          ? trans.__('%1 kernel', o.kernel_name)
          : trans.__('kernel')}
      </span>
    );
  }
  return (
    <span>
      {o.kind === 'terminal' ? trans.__('terminal') : trans.__('process')}
    </span>
  );
}

export function ProcessTable(props: {
  gpuIndex: number;
  shown: IProcessReading[];
  hidden: number;
  units: MemoryUnits;
  onOpenNotebook: (path: string, kernelId?: string | null) => void;
  trans: ITrans;
}): JSX.Element {
  const { shown, hidden, units, trans } = props;
  if (shown.length === 0 && hidden === 0) {
    return (
      <div className="jp-GpuPanel-muted jp-GpuPanel-small">
        {trans.__('No processes on this GPU.')}
      </div>
    );
  }
  return (
    <div className="jp-GpuPanel-tableWrap">
      <table
        className="jp-GpuPanel-table"
        aria-label={trans.__('Processes on GPU %1', props.gpuIndex)}
      >
        <thead>
          <tr>
            <th scope="col">{trans.__('PID')}</th>
            <th scope="col">{trans.__('User')}</th>
            <th scope="col" className="jp-GpuPanel-num">
              {trans.__('Memory')}
            </th>
            <th scope="col">{trans.__('Owner')}</th>
          </tr>
        </thead>
        <tbody>
          {shown.map(p => (
            <tr key={p.pid} data-pid={p.pid} title={p.command || p.name || ''}>
              <td>{p.pid}</td>
              <td>{p.user ?? '—'}</td>
              <td className="jp-GpuPanel-num" data-bytes={p.used ?? ''}>
                {formatBytes(p.used, units)}
              </td>
              <td>
                <OwnerCell
                  p={p}
                  onOpenNotebook={props.onOpenNotebook}
                  trans={trans}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {hidden > 0 && (
        <div className="jp-GpuPanel-muted jp-GpuPanel-small">
          {trans._n(
            '%1 process of other users hidden (see settings).',
            '%1 processes of other users hidden (see settings).',
            hidden,
            hidden
          )}
        </div>
      )}
    </div>
  );
}
