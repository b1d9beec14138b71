/**
 * A kernel row: its notebook, state and GPU memory, the memory details, and
 * its actions (interrupt, restart, shut down through Jupyter's kernel API;
 * Track memory, triage and Release cached memory through the panel's server
 * routes). Each action's outcome shows in the row, the server's words on
 * failure, and the row always offers the action again.
 *
 * An idle holder (idle past the server's `idle_after` while holding GPU
 * memory) says so in a badge and the server's sentence, and offers its
 * actions least destructive first: Release cached memory, Restart, Shut down.
 */
import {
  clearIcon,
  closeIcon,
  refreshIcon,
  stopIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { OutcomeNote, Stat } from '../components';
import { baseName, kernelMemoryText, MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { canMove, kernelGpusText } from '../placement/words';
import { IKernelInfo, IProbeLoaded, IReleaseReply } from '../types';
import { MemoryDetails } from './details';
import { idleBadgeText, idleMessage, isIdleHolder } from './idle';
import { isOom } from './oom';
import {
  actionLabel,
  doneOutcome,
  errorOutcome,
  IDLE,
  probeOutcome,
  releaseOutcome,
  RowAction,
  rowView
} from './outcome';
import { useOutcome } from './useoutcome';

/** What a kernel row can do; index.ts implements it with Jupyter's services and the panel's API. */
export interface IKernelControl {
  interrupt(kernelId: string): Promise<void>;
  restart(kernelId: string): Promise<void>;
  shutdown(kernelId: string): Promise<void>;
  /** The kernel's answer, ok or not; rejects only when the request failed. */
  loadProbe(kernelId: string): Promise<IProbeLoaded>;
  triage(kernelId: string): Promise<unknown>;
  /** Empty torch's cache in an idle kernel: the server's answer; rejects when the request failed (409: busy). */
  release(kernelId: string): Promise<IReleaseReply>;
  /** *Restart on GPU…*: pick a GPU, confirm, restart; the GPU, or null when cancelled. */
  restartOnGpu?(kernelId: string, label: string): Promise<number | null>;
}

export type Confirm = (
  title: string,
  body: string,
  accept: string
) => Promise<boolean>;

export function isAlarm(subject: { leak: IKernelInfo['leak'] }): boolean {
  const leak = subject.leak;
  return !!(leak && leak.leak && leak.actionable) || isOom(subject);
}

export function kernelLabel(k: IKernelInfo, trans: ITrans): string {
  return k.notebook
    ? baseName(k.notebook)
    : trans.__(
        '%1 %2',
        k.kernel_name ?? trans.__('kernel'),
        k.kernel_id.slice(0, 8)
      );
}

export function KernelRow(props: {
  k: IKernelInfo;
  units: MemoryUnits;
  themeKey: string;
  control: IKernelControl;
  confirm: Confirm;
  onOpenNotebook: (path: string, kernelId?: string | null) => void;
  trans: ITrans;
}): JSX.Element {
  const { k, units, themeKey, control, trans } = props;
  const { outcome, run, dismiss } = useOutcome();
  const view = rowView(k.probe, outcome, trans);
  const label = kernelLabel(k, trans);
  const id = k.kernel_id;
  const holder = isIdleHolder(k);

  const act = async (action: RowAction) => {
    if (action === 'restart' || action === 'shutdown') {
      const verb = actionLabel(action, trans);
      const ok = await props.confirm(
        action === 'restart'
          ? trans.__('Restart kernel?')
          : trans.__('Shut down kernel?'),
        action === 'restart'
          ? trans.__(
              'Restart the kernel of %1? Its variables will be lost.',
              label
            )
          : trans.__(
              'Shut down the kernel of %1? Its variables will be lost.',
              label
            ),
        verb
      );
      if (!ok) {
        return;
      }
    }
    await run(action, async () => {
      try {
        if (action === 'probe') {
          return probeOutcome(await control.loadProbe(id), trans);
        }
        if (action === 'release') {
          return releaseOutcome(await control.release(id), trans);
        }
        await control[action](id);
        return action === 'triage' ? IDLE : doneOutcome(action, trans);
      } catch (err) {
        return errorOutcome(action, err, trans);
      }
    });
  };

  const button = (action: RowAction, icon?: typeof stopIcon) => (
    <ToolbarButtonComponent
      className="jp-GpuPanel-action"
      icon={icon}
      label={actionLabel(action, trans)}
      enabled={!view.busy}
      dataset={{ action }}
      onClick={() => void act(action)}
      tooltip={
        action === 'probe'
          ? trans.__(
              'Load a small memory probe into the kernel to follow its allocations per step'
            )
          : action === 'release'
            ? trans.__(
                "Give torch's cached GPU memory back to the GPU; the kernel's variables are kept"
              )
            : actionLabel(action, trans)
      }
    />
  );

  return (
    <li
      className={`jp-GpuPanel-kernel${isAlarm(k) ? ' jp-GpuPanel-kernel-alarm' : ''}${holder ? ' jp-GpuPanel-kernel-idle' : ''}`}
      data-kernel-id={id}
      data-busy={view.busy}
      data-idle-holder={holder}
      aria-label={trans.__('Kernel %1', label)}
    >
      <div className="jp-GpuPanel-kernelHead">
        {k.notebook ? (
          <button
            className="jp-GpuPanel-link"
            onClick={() => props.onOpenNotebook(k.notebook!, k.kernel_id)}
            title={trans.__('Open %1', k.notebook)}
          >
            {label}
          </button>
        ) : (
          <span>{label}</span>
        )}
        {holder && (
          <span
            className="jp-GpuPanel-idleBadge"
            data-testid="idle-badge"
            title={idleMessage(k, units, trans)}
          >
            {idleBadgeText(k, units, trans)}
          </span>
        )}
        <span className="jp-GpuPanel-muted jp-GpuPanel-small">
          {k.kernel_name ?? ''} · {k.execution_state ?? trans.__('unknown')}
        </span>
      </div>
      {holder && (
        <div
          className="jp-GpuPanel-hint jp-GpuPanel-hint-warn jp-GpuPanel-idleMessage"
          data-testid="idle-message"
        >
          {idleMessage(k, units, trans)}
        </div>
      )}
      <MemoryDetails
        subject={k}
        units={units}
        themeKey={themeKey}
        probeText={view.probeText}
        busy={view.busy}
        onTriage={() => void act('triage')}
        trans={trans}
      >
        <Stat
          label={trans.__('GPU memory')}
          value={kernelMemoryText(k, units, trans)}
        />
        <Stat
          label={trans.__('May use')}
          value={kernelGpusText(k.placement, trans)}
          testId="kernel-gpus"
        />
      </MemoryDetails>
      <div className="jp-GpuPanel-buttons">
        {holder ? button('release', clearIcon) : button('interrupt', stopIcon)}
        {button('restart', refreshIcon)}
        {button('shutdown', closeIcon)}
        {view.offerProbe && button('probe')}
        {control.restartOnGpu && canMove(k.placement) && (
          <ToolbarButtonComponent
            className="jp-GpuPanel-action"
            label={trans.__('Restart on GPU…')}
            enabled={!view.busy}
            dataset={{ action: 'restart-on-gpu' }}
            tooltip={trans.__(
              'Restart this kernel on another GPU (its variables are lost)'
            )}
            onClick={() =>
              void run('restart', async () => {
                try {
                  const gpu = await control.restartOnGpu!(id, label);
                  return gpu === null ? IDLE : doneOutcome('restart', trans);
                } catch (err) {
                  return errorOutcome('restart', err, trans);
                }
              })
            }
          />
        )}
      </div>
      {view.note && (
        <OutcomeNote
          level={view.note.level}
          message={view.note.message}
          dismissLabel={trans.__('Dismiss')}
          onDismiss={dismiss}
        />
      )}
    </li>
  );
}
