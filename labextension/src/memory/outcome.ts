/**
 * Pure: what a kernel or script row says after the user acts on it. Every
 * action ends in a state the row shows where the user clicked (the
 * server's own message on failure), and every state offers the action
 * again: no state is left only by a page reload.
 */
import { ITrans, plainTrans } from '../i18n';
import { IProbeInfo, IProbeLoaded, IReleaseReply } from '../types';

export type RowAction =
  'interrupt' | 'restart' | 'shutdown' | 'probe' | 'triage' | 'release';

export type Outcome =
  | { kind: 'idle' }
  | { kind: 'pending'; action: RowAction }
  | {
      kind: 'done';
      action: RowAction;
      level: 'info' | 'error';
      message: string;
      /** The probe was queued behind a running cell. */
      queued?: boolean;
    };

export const IDLE: Outcome = { kind: 'idle' };

/** How long an informational outcome stays before the row clears it (ms); errors stay. */
export const INFO_MS = 10000;

export function actionLabel(
  action: RowAction,
  trans: ITrans = plainTrans
): string {
  switch (action) {
    case 'interrupt':
      return trans.__('Interrupt');
    case 'restart':
      return trans.__('Restart');
    case 'shutdown':
      return trans.__('Shut down');
    case 'probe':
      return trans.__('Track memory');
    case 'triage':
      return trans.__('Find the leaking line');
    case 'release':
      return trans.__('Release cached memory');
  }
}

const PREFIX = 'jupyter-gpu-panel: ';

/** The kernel's own line, without the package prefix it prints. */
function kernelWords(message: string): string {
  const m = message.trim();
  return m.startsWith(PREFIX) ? m.slice(PREFIX.length) : m;
}

/**
 * POST kernels/{id}/probe answered: ok when the probe runs (started now or
 * before), queued behind a busy cell, or not loaded with the reason (torch
 * missing, no CUDA): an error the row shows, the button offered again.
 */
export function probeOutcome(
  reply: IProbeLoaded,
  trans: ITrans = plainTrans
): Outcome {
  const words = kernelWords(reply.message || '');
  if (!reply.ok) {
    return {
      kind: 'done',
      action: 'probe',
      level: 'error',
      message: words || trans.__('The kernel did not start the memory probe.')
    };
  }
  if (reply.queued) {
    return {
      kind: 'done',
      action: 'probe',
      level: 'info',
      queued: true,
      message:
        words ||
        trans.__(
          'The kernel is busy: the probe starts when the running cell ends.'
        )
    };
  }
  return {
    kind: 'done',
    action: 'probe',
    level: 'info',
    message: words || trans.__('The memory probe runs.')
  };
}

/**
 * POST kernels/{id}/release answered: the server's sentence either way
 * (released so much, nothing to release, fragmentation), info when the
 * kernel ran the release, an error when it did not answer as expected.
 * A busy kernel's 409 is a failed request (errorOutcome).
 */
export function releaseOutcome(
  reply: IReleaseReply,
  trans: ITrans = plainTrans
): Outcome {
  const words = kernelWords(reply.message || '');
  if (!reply.ok) {
    return {
      kind: 'done',
      action: 'release',
      level: 'error',
      message:
        words || trans.__('The kernel did not release its cached memory.')
    };
  }
  return {
    kind: 'done',
    action: 'release',
    level: 'info',
    message: words || trans.__('Cached memory released.')
  };
}

/** A successful interrupt, restart, shutdown or triage request. */
export function doneOutcome(
  action: RowAction,
  trans: ITrans = plainTrans
): Outcome {
  const message = {
    interrupt: () => trans.__('Interrupted.'),
    restart: () => trans.__('Restarted.'),
    shutdown: () => trans.__('Shut down.'),
    probe: () => trans.__('The memory probe runs.'),
    triage: () => trans.__('Recording requested.'),
    release: () => trans.__('Cached memory released.')
  }[action]();
  return { kind: 'done', action, level: 'info', message };
}

/** A failed action: the server's message (or the network's), after what failed. */
export function errorOutcome(
  action: RowAction,
  err: unknown,
  trans: ITrans = plainTrans
): Outcome {
  const raw = err instanceof Error ? err.message : String(err ?? '');
  const message = raw.trim() || trans.__('no answer from the server');
  return {
    kind: 'done',
    action,
    level: 'error',
    message: trans.__('%1 failed: %2', actionLabel(action, trans), message)
  };
}

export interface IRowView {
  /** An action is under way: the buttons wait. */
  busy: boolean;
  /** Which action is under way, for its button's label. */
  pendingAction: RowAction | null;
  /** Offer "Track memory": whenever no live probe is reported, whatever happened before. */
  offerProbe: boolean;
  /** The "Memory probe" stat. */
  probeText: string;
  /** The outcome to show under the buttons, or null. */
  note: { level: 'info' | 'error'; message: string } | null;
}

function probeStats(probe: IProbeInfo, trans: ITrans): string {
  const n = trans._n('%1 step', '%1 steps', probe.steps, probe.steps);
  return probe.alive ? trans.__('tracking, %1', n) : trans.__('stopped, %1', n);
}

/** What a row shows for its probe and its last action's outcome. */
export function rowView(
  probe: IProbeInfo | null,
  outcome: Outcome,
  trans: ITrans = plainTrans
): IRowView {
  const busy = outcome.kind === 'pending';
  const live = !!probe && probe.alive;
  let probeText: string;
  if (probe) {
    probeText = probeStats(probe, trans);
  } else if (busy && outcome.action === 'probe') {
    probeText = trans.__('loading…');
  } else if (
    outcome.kind === 'done' &&
    outcome.action === 'probe' &&
    outcome.level === 'info'
  ) {
    probeText = outcome.queued
      ? trans.__('queued: starts when the running cell ends')
      : trans.__('loaded, waiting for the server to see it…');
  } else {
    probeText = trans.__('not tracked');
  }
  let note: IRowView['note'] = null;
  if (outcome.kind === 'done') {
    // A probe that now shows up says more than "it runs".
    const seen =
      outcome.action === 'probe' && outcome.level === 'info' && !!probe;
    note = seen ? null : { level: outcome.level, message: outcome.message };
  }
  return {
    busy,
    pendingAction: busy ? outcome.action : null,
    offerProbe: !live,
    probeText,
    note
  };
}
