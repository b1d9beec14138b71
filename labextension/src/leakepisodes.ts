/**
 * When to warn about a leak: once per kernel (or probed script) per episode.
 *
 * An episode starts when a verdict becomes actionable with an OOM forecast
 * inside the user's horizon, and ends when it no longer is (the leak
 * stopped, the kernel restarted, or it went away). Polling the same verdict
 * again must not warn again. Kernels are keyed by their id, scripts by
 * `script:<pid>`. Pure: the store keeps the set.
 */
import { IKernelInfo, ILeakVerdict, IScriptInfo } from './types';

/**
 * Whether a verdict warrants a notification. A verdict without a time
 * forecast (e.g. step-based only) still counts when actionable: the server
 * has already judged it worth acting on.
 */
export function isAlarming(
  k: { leak: ILeakVerdict | null },
  horizonSeconds: number
): boolean {
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

/** A script's episode key; never a kernel id (those are UUIDs). */
export function scriptKey(s: IScriptInfo): string {
  return `script:${s.pid}`;
}

export interface IEpisodeUpdate {
  /** Kernels to notify about now. */
  notify: IKernelInfo[];
  /** Scripts to notify about now. */
  notifyScripts: IScriptInfo[];
  /** Keys (kernel ids, `script:<pid>`) in an open episode after this poll. */
  open: Set<string>;
}

export function updateEpisodes(
  open: ReadonlySet<string>,
  kernels: IKernelInfo[],
  horizonSeconds: number,
  scripts: IScriptInfo[] = []
): IEpisodeUpdate {
  const next = new Set<string>();
  // Adds the alarming items' keys to `next`; returns those whose episode starts now.
  const starting = <T extends { leak: ILeakVerdict | null }>(
    items: T[],
    key: (item: T) => string
  ): T[] =>
    items.filter(item => {
      const k = key(item);
      if (!isAlarming(item, horizonSeconds) || next.has(k)) {
        return false;
      }
      next.add(k);
      return !open.has(k);
    });
  const notify = starting(kernels, k => k.kernel_id);
  const notifyScripts = starting(scripts, scriptKey);
  return { notify, notifyScripts, open: next };
}
