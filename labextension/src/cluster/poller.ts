/**
 * The store's cluster poll (the cluster document is not on the stream):
 * one request at a time (the next is scheduled when one ends, never
 * overlapping), while active (the store says when: the Cluster section is
 * shown and a Prometheus is configured), at once when it becomes active
 * again after an interval has passed, and on demand (Refresh).
 * An error keeps the last good document, and so does an `unreachable`
 * answer (with its state and message: `keptFrom` says since when). A
 * `not-configured` server is not asked again until Refresh: only a restart
 * with a Prometheus changes that. No DOM, no React: jest drives it with
 * fake timers.
 */
import { Cluster } from './model';
import { keepLastGood } from './notice';

/** The section's poll period, seconds, when none is given. */
export const DEFAULT_REFRESH_SECONDS = 10;

export interface IClusterResult {
  doc: Cluster | null;
  error: string | null;
  /** The shown document is the last good one, from this time (Unix s): Prometheus went unreachable. */
  keptFrom: number | null;
  /** Date.now() of the last answer, ok or not; null before the first. */
  at: number | null;
  fetching: boolean;
}

/** Before the first answer. */
export const NO_CLUSTER: IClusterResult = {
  doc: null,
  keptFrom: null,
  error: null,
  at: null,
  fetching: false
};

export class ClusterPoller {
  constructor(
    private readonly _fetch: () => Promise<Cluster>,
    private readonly _onChange: (result: IClusterResult) => void,
    refreshSeconds: number = DEFAULT_REFRESH_SECONDS
  ) {
    this.setRefreshSeconds(refreshSeconds);
  }

  get result(): IClusterResult {
    return this._result;
  }

  get active(): boolean {
    return this._active;
  }

  /** The poll period in seconds (at least 1). */
  setRefreshSeconds(seconds: number): void {
    const s = Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
    this._everyMs = Math.max(1, s || DEFAULT_REFRESH_SECONDS) * 1000;
    if (this._active && this._timer !== null) {
      this._schedule();
    }
  }

  /** Poll while active; a request in flight still delivers. */
  setActive(active: boolean): void {
    if (this._disposed || active === this._active) {
      return;
    }
    this._active = active;
    if (!active) {
      this._clearTimer();
      return;
    }
    const at = this._result.at;
    if (this._inflight) {
      return;
    }
    if (at === null || Date.now() - at >= this._everyMs) {
      void this.refresh();
    } else if (this._keepPolling()) {
      this._schedule(this._everyMs - (Date.now() - at));
    }
  }

  /** Ask now (a request in flight is joined, not repeated). */
  refresh(): Promise<void> {
    if (this._disposed) {
      return Promise.resolve();
    }
    if (this._inflight) {
      return this._inflight;
    }
    this._clearTimer();
    this._set({ fetching: true });
    this._inflight = this._fetch().then(
      doc =>
        this._done({
          ...keepLastGood(this._result.doc, this._result.keptFrom, doc),
          error: null
        }),
      err => this._done({ error: errorText(err) })
    );
    return this._inflight;
  }

  dispose(): void {
    this._disposed = true;
    this._active = false;
    this._clearTimer();
  }

  private _done(patch: Partial<IClusterResult>): void {
    this._inflight = null;
    if (this._disposed) {
      return;
    }
    this._set({ ...patch, at: Date.now(), fetching: false });
    if (this._active && this._keepPolling()) {
      this._schedule();
    }
  }

  private _keepPolling(): boolean {
    return this._result.doc?.state !== 'not-configured';
  }

  private _schedule(delay = this._everyMs): void {
    this._clearTimer();
    this._timer = setTimeout(
      () => {
        this._timer = null;
        void this.refresh();
      },
      Math.max(0, delay)
    );
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _set(patch: Partial<IClusterResult>): void {
    this._result = { ...this._result, ...patch };
    this._onChange(this._result);
  }

  private _result: IClusterResult = NO_CLUSTER;
  private _everyMs = DEFAULT_REFRESH_SECONDS * 1000;
  private _active = false;
  private _disposed = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _inflight: Promise<void> | null = null;
}

/** An error's message for the section ("403 Forbidden", "network error"). */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    return err.message || err.name;
  }
  return String(err);
}
