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
  if (leak.source === 'steps' && leak.state === 'oom') {
    return false; // it ran out already: the OOM's own notification says so
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

/** One kind of episode after a poll: which items start one now, which keys are open, which ended. */
export interface IEpisodes<T> {
  /** Items whose episode starts now (each key once). */
  starting: T[];
  /** Keys in an open episode after this poll. */
  open: Set<string>;
  /** Keys whose episode was open before this poll and is over now (the item changed or went away). */
  ended: string[];
}

/**
 * The episode mechanism, for any condition: an item starts an episode when
 * `isOn` becomes true for its key, which stays open while it holds; the
 * same state polled again starts nothing. Leaks use it here; idle GPU
 * holders (memory/idle.ts) the same way.
 */
export function trackEpisodes<T>(
  open: ReadonlySet<string>,
  items: readonly T[],
  key: (item: T) => string,
  isOn: (item: T) => boolean
): IEpisodes<T> {
  const next = new Set<string>();
  const starting = items.filter(item => {
    const k = key(item);
    if (!isOn(item) || next.has(k)) {
      return false;
    }
    next.add(k);
    return !open.has(k);
  });
  const ended = [...open].filter(k => !next.has(k));
  return { starting, open: next, ended };
}

export function updateEpisodes(
  open: ReadonlySet<string>,
  kernels: IKernelInfo[],
  horizonSeconds: number,
  scripts: IScriptInfo[] = []
): IEpisodeUpdate {
  const alarming = (item: { leak: ILeakVerdict | null }) =>
    isAlarming(item, horizonSeconds);
  // Kernel ids and script keys never collide: one set holds both.
  const k = trackEpisodes(open, kernels, x => x.kernel_id, alarming);
  const s = trackEpisodes(open, scripts, scriptKey, alarming);
  return {
    notify: k.starting,
    notifyScripts: s.starting,
    open: new Set([...k.open, ...s.open])
  };
}
