/**
 * The stream socket's connection state machine (connecting, live,
 * reconnecting, unreachable, no extension) and its retry backoff. Pure: the
 * store feeds events in; `banners.ts` says what each phase shows.
 */
export type Phase =
  /** First attempt, nothing heard yet. */
  | 'connecting'
  /** Socket open and the server said hello. */
  | 'live'
  /** Lost (or never had) the socket; a retry is scheduled. */
  | 'reconnecting'
  /** Several attempts failed in a row: the server looks down. */
  | 'unreachable'
  /** The server answers but has no gpu-panel API (extension not enabled). */
  | 'no-extension';

export interface IConnection {
  phase: Phase;
  /** Consecutive failed attempts since the last successful hello. */
  failures: number;
  /** When the next attempt is due (ms, browser clock), null when live. */
  retryAt: number | null;
  /** Whether the stream ever said hello in this tab. */
  everLive: boolean;
  lastError: string | null;
}

export type ConnEvent =
  | { type: 'hello' }
  | { type: 'closed'; reason?: string; retryAt: number }
  | { type: 'connecting' }
  | { type: 'not-found' };

/** After this many failed attempts in a row, say "unreachable", not "reconnecting". */
export const UNREACHABLE_AFTER = 3;

export const initialConnection: IConnection = {
  phase: 'connecting',
  failures: 0,
  retryAt: null,
  everLive: false,
  lastError: null
};

export function reduceConnection(c: IConnection, e: ConnEvent): IConnection {
  switch (e.type) {
    case 'hello':
      return {
        phase: 'live',
        failures: 0,
        retryAt: null,
        everLive: true,
        lastError: null
      };
    case 'connecting':
      // Keep the visible phase while retrying: flipping to "connecting" and
      // back on every attempt would make the banner flicker.
      return c.phase === 'live' ? c : { ...c, retryAt: null };
    case 'closed': {
      const failures = c.failures + 1;
      return {
        ...c,
        failures,
        retryAt: e.retryAt,
        lastError: e.reason ?? c.lastError,
        phase: failures >= UNREACHABLE_AFTER ? 'unreachable' : 'reconnecting'
      };
    }
    case 'not-found':
      return { ...c, phase: 'no-extension', retryAt: null };
  }
  return c;
}

/**
 * Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 15 s.
 * `rand` in [0, 1) is injected so tests are deterministic; jitter spreads
 * reconnects of many tabs after a server restart.
 */
export function backoffDelay(failures: number, rand: number): number {
  const base = Math.min(15000, 500 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * rand));
}
