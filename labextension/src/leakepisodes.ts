/**
 * When to warn about a leaking kernel: once per kernel per episode.
 *
 * An episode starts when a kernel's verdict becomes actionable with an OOM
 * forecast inside the user's horizon, and ends when it no longer is (the
 * leak stopped, the kernel restarted, or it went away). Polling the same
 * verdict again must not warn again. Pure: the store keeps the set.
 */
import { IKernelInfo } from './types';

/**
 * Whether a verdict warrants a notification. A verdict without a time
 * forecast (e.g. step-based only) still counts when actionable: the server
 * has already judged it worth acting on.
 */
export function isAlarming(k: IKernelInfo, horizonSeconds: number): boolean {
  const leak = k.leak;
  if (!leak || !leak.leak || !leak.actionable) {
    return false;
  }
  const eta = leak.seconds_to_oom;
  if (typeof eta === 'number' && Number.isFinite(eta)) {
    return eta <= horizonSeconds;
  }
  return true;
}

export interface IEpisodeUpdate {
  /** Kernels to notify about now. */
  notify: IKernelInfo[];
  /** Kernel ids in an open episode after this poll. */
  open: Set<string>;
}

export function updateEpisodes(
  open: ReadonlySet<string>,
  kernels: IKernelInfo[],
  horizonSeconds: number
): IEpisodeUpdate {
  const next = new Set<string>();
  const notify: IKernelInfo[] = [];
  for (const k of kernels) {
    if (isAlarming(k, horizonSeconds)) {
      next.add(k.kernel_id);
      if (!open.has(k.kernel_id)) {
        notify.push(k);
      }
    }
  }
  return { notify, open: next };
}
