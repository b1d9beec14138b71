/**
 * Pure: idle GPU holders. A kernel is an *idle holder* when the server says
 * so (`idle.holder`: idle past `c.GPUPanel.idle_after` while its processes
 * hold GPU memory). What its row's badge says, when to notify (once per
 * episode, the leak alarms' mechanism), and the line for kernels the server
 * shut down for sitting idle (`culled`).
 */
import { baseName, formatBytes, formatDuration, kernelMemory } from '../format';
import { MemoryUnits } from '../format';
import { ITrans, plainTrans } from '../i18n';
import { IEpisodes, trackEpisodes } from '../leakepisodes';
import { ICulledKernel, IKernelInfo } from '../types';

/** How many culled kernels the Kernels section names (newest first). */
export const CULLED_SHOWN = 3;

export function isIdleHolder(k: Pick<IKernelInfo, 'idle'>): boolean {
  return !!(k.idle && k.idle.holder);
}

/** The row's badge: "Idle · holding 18 GiB" (what the kernel's processes hold now). */
export function idleBadgeText(
  k: IKernelInfo,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): string {
  return trans.__('Idle · holding %1', formatBytes(kernelMemory(k), units));
}

/**
 * The server's sentence for an idle holder (how long, how much, how much of
 * it torch's cache), or, should it send none, the badge's words with the
 * idle time.
 */
export function idleMessage(
  k: IKernelInfo,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): string {
  const m = k.idle?.message;
  if (typeof m === 'string' && m.trim()) {
    return m.trim();
  }
  const held = formatBytes(kernelMemory(k), units);
  const s = k.idle?.seconds;
  return typeof s === 'number' && Number.isFinite(s)
    ? trans.__('Idle %1, holding %2.', formatDuration(s), held)
    : trans.__('Idle, holding %1.', held);
}

/**
 * Which kernels became idle holders since the last kernels document (notify
 * once each), which stay so, and whose episode is over (no longer an idle
 * holder: it ran a cell, released its memory, restarted, or went away).
 */
export function updateIdleEpisodes(
  open: ReadonlySet<string>,
  kernels: readonly IKernelInfo[]
): IEpisodes<IKernelInfo> {
  return trackEpisodes(open, kernels, k => k.kernel_id, isIdleHolder);
}

function kernelName(
  c: Pick<ICulledKernel, 'notebook' | 'kernel_id'>,
  trans: ITrans
): string {
  return c.notebook
    ? baseName(c.notebook)
    : trans.__('kernel %1', c.kernel_id.slice(0, 8));
}

/** "Shut down train.ipynb: idle 1 h while holding 18 GiB". */
export function culledLine(
  c: ICulledKernel,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): string {
  const name = kernelName(c, trans);
  const held = formatBytes(c.memory, units);
  const s = c.idle_seconds;
  return typeof s === 'number' && Number.isFinite(s)
    ? trans.__(
        'Shut down %1: idle %2 while holding %3',
        name,
        formatDuration(s),
        held
      )
    : trans.__('Shut down %1: idle while holding %2', name, held);
}

/** The culled kernels to name, newest first, `CULLED_SHOWN` at most (the server lists newest last). */
export function recentCulled(
  culled: readonly ICulledKernel[] | null | undefined,
  max = CULLED_SHOWN
): ICulledKernel[] {
  return [...(culled ?? [])].sort((a, b) => b.t - a.t).slice(0, max);
}
