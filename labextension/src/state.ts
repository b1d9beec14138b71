/**
 * Connection state machine for the one stream socket, and the mapping from
 * (connection, server status, data) to what the panel says: never a blank
 * panel, always a named state. Pure: the store feeds events in, widgets
 * read the derived view.
 */
import { clockTime } from './format';
import { IStatus, SourceState } from './types';

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

export type Level = 'info' | 'warning' | 'error';

export interface IBanner {
  level: Level;
  title: string;
  detail: string | null;
  /** Offer a "Retry now" button (connection problems). */
  retry?: boolean;
}

export interface IView {
  /** What fills the panel body. */
  body: 'loading' | 'gpus' | 'message';
  /** Big centred message when body is 'message'. */
  message: IBanner | null;
  /** Banners above the cards (replay, reconnecting ...). */
  banners: IBanner[];
  /** Status bar wording when there is nothing numeric to show. */
  shortText: string | null;
}

const STATE_TEXT: {
  [state in Exclude<SourceState, 'ok'>]: { title: string; hint: string };
} = {
  starting: {
    title: 'Starting the GPU reader…',
    hint: 'The server has not opened the GPU library yet.'
  },
  'nvml-missing': {
    title: 'NVIDIA driver library (NVML) not found',
    hint: 'This machine has no NVIDIA driver installed, so no GPU can be read.'
  },
  'driver-not-loaded': {
    title: 'NVIDIA driver not loaded',
    hint: 'The NVIDIA library is present but its kernel driver is not running.'
  },
  'no-devices': {
    title: 'No NVIDIA GPU found',
    hint: 'The driver is running but reports no GPU visible to this server.'
  },
  error: {
    title: 'Cannot read the GPUs',
    hint: 'The GPU library returned an error.'
  }
};

export interface IViewInput {
  conn: IConnection;
  status: IStatus | null;
  /** Number of GPUs in the latest snapshot (null before any). */
  gpuCount: number | null;
  /** Time of the newest data (server clock, s), for "showing data from". */
  lastDataT: number | null;
  /** Browser clock now (ms), for the retry countdown. */
  now: number;
}

function retryIn(conn: IConnection, now: number): string {
  if (conn.retryAt === null) {
    return 'retrying now';
  }
  const s = Math.max(0, Math.ceil((conn.retryAt - now) / 1000));
  return s <= 0 ? 'retrying now' : `retrying in ${s} s`;
}

export function deriveView(input: IViewInput): IView {
  const { conn, status, gpuCount, lastDataT, now } = input;
  const banners: IBanner[] = [];
  const hasData = gpuCount !== null && gpuCount > 0;

  if (conn.phase === 'no-extension') {
    const m: IBanner = {
      level: 'error',
      title: 'GPU panel server extension not enabled',
      detail:
        'The server has no api/gpu-panel endpoint. Enable it with ' +
        '`jupyter server extension enable jupyter_gpu_panel` and restart.'
    };
    return { body: 'message', message: m, banners, shortText: 'GPU off' };
  }

  if (conn.phase === 'reconnecting' || conn.phase === 'unreachable') {
    const title =
      conn.phase === 'unreachable'
        ? 'Jupyter server unreachable'
        : 'Reconnecting to the GPU stream';
    const since =
      hasData && lastDataT !== null
        ? `Showing data from ${clockTime(lastDataT)}; `
        : '';
    const b: IBanner = {
      level: conn.phase === 'unreachable' ? 'error' : 'warning',
      title,
      detail: `${since}${retryIn(conn, now)}.`,
      retry: true
    };
    if (!hasData) {
      return { body: 'message', message: b, banners, shortText: 'GPU offline' };
    }
    banners.push(b);
  }

  if (!status) {
    if (conn.phase === 'connecting') {
      return {
        body: 'loading',
        message: {
          level: 'info',
          title: 'Connecting to the GPU service…',
          detail: null
        },
        banners,
        shortText: 'GPU …'
      };
    }
  } else {
    if (status.source === 'replay') {
      banners.push({
        level: 'info',
        title: 'Recorded data (replay)',
        detail: `Not this machine's GPUs: replaying ${
          status.replay_file ? status.replay_file : 'a recorded trace'
        }.`
      });
    }
    if (status.state !== 'ok') {
      const text = STATE_TEXT[status.state];
      const m: IBanner = {
        level: status.state === 'error' ? 'error' : 'info',
        title: text.title,
        // The server's own message is the specific one; the hint is the fallback.
        detail: status.message || text.hint
      };
      if (!hasData) {
        const shortText = status.state === 'starting' ? 'GPU …' : 'No GPU';
        return { body: 'message', message: m, banners, shortText };
      }
      banners.push(m);
    }
    if (
      status.sampler &&
      status.sampler.errors > 0 &&
      status.sampler.last_error
    ) {
      banners.push({
        level: 'warning',
        title: 'Sampler errors',
        detail: `${status.sampler.errors} failed reads; last: ${status.sampler.last_error}`
      });
    }
  }

  if (gpuCount === null) {
    return {
      body: 'loading',
      message: {
        level: 'info',
        title: 'Waiting for the first reading…',
        detail: null
      },
      banners,
      shortText: 'GPU …'
    };
  }
  if (gpuCount === 0) {
    const m: IBanner = {
      level: 'info',
      title: 'No NVIDIA GPU found',
      detail: status?.message ?? null
    };
    return { body: 'message', message: m, banners, shortText: 'No GPU' };
  }
  return { body: 'gpus', message: null, banners, shortText: null };
}

/** Per-GPU state words shown on a card that is not 'ok'. */
export function gpuStateText(
  state: string,
  error: string | null
): string | null {
  switch (state) {
    case 'ok':
      return null;
    case 'lost':
      return 'GPU lost: it fell off the bus (Xid 79). A reboot or GPU reset is needed.';
    case 'unresponsive':
      return 'GPU not responding: the last query timed out.';
    default:
      return `GPU error${error ? `: ${error}` : ''}`;
  }
}
