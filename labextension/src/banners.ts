/**
 * What the panel says for each (connection, server status, data): the body
 * (loading, the GPUs, or one big message), the banners above the cards, the
 * status bar's short text, and a card's per-GPU state. Never a blank panel,
 * always a named state. Pure: widgets call it with the store's state.
 */
import { IConnection } from './connection';
import { clockTime } from './format';
import { ITrans, plainTrans } from './i18n';
import { IStatus, SourceState } from './types';

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

function stateText(
  state: Exclude<SourceState, 'ok'>,
  trans: ITrans
): { title: string; hint: string } {
  switch (state) {
    case 'starting':
      return {
        title: trans.__('Starting the GPU reader…'),
        hint: trans.__('The server has not opened the GPU library yet.')
      };
    case 'nvml-missing':
      return {
        title: trans.__('NVIDIA driver library (NVML) not found'),
        hint: trans.__(
          'This machine has no NVIDIA driver installed, so no GPU can be read.'
        )
      };
    case 'driver-not-loaded':
      return {
        title: trans.__('NVIDIA driver not loaded'),
        hint: trans.__(
          'The NVIDIA library is present but its kernel driver is not running.'
        )
      };
    case 'no-devices':
      return {
        title: trans.__('No NVIDIA GPU found'),
        hint: trans.__(
          'The driver is running but reports no GPU visible to this server.'
        )
      };
    default:
      return {
        title: trans.__('Cannot read the GPUs'),
        hint: trans.__('The GPU library returned an error.')
      };
  }
}

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

function retryIn(conn: IConnection, now: number, trans: ITrans): string {
  const s =
    conn.retryAt === null
      ? 0
      : Math.max(0, Math.ceil((conn.retryAt - now) / 1000));
  return s <= 0 ? trans.__('retrying now') : trans.__('retrying in %1 s', s);
}

export function deriveView(
  input: IViewInput,
  trans: ITrans = plainTrans
): IView {
  const { conn, status, gpuCount, lastDataT, now } = input;
  const banners: IBanner[] = [];
  const hasData = gpuCount !== null && gpuCount > 0;

  if (conn.phase === 'no-extension') {
    const m: IBanner = {
      level: 'error',
      title: trans.__('GPU panel server extension not enabled'),
      detail: trans.__(
        'The server has no api/gpu-panel endpoint. Enable it with `jupyter server extension enable jupyter_gpu_panel` and restart.'
      )
    };
    return {
      body: 'message',
      message: m,
      banners,
      shortText: trans.__('GPU off')
    };
  }

  if (conn.phase === 'reconnecting' || conn.phase === 'unreachable') {
    const title =
      conn.phase === 'unreachable'
        ? trans.__('Jupyter server unreachable')
        : trans.__('Reconnecting to the GPU stream');
    const retry = retryIn(conn, now, trans);
    const b: IBanner = {
      level: conn.phase === 'unreachable' ? 'error' : 'warning',
      title,
      detail:
        hasData && lastDataT !== null
          ? trans.__('Showing data from %1; %2.', clockTime(lastDataT), retry)
          : `${retry}.`,
      retry: true
    };
    if (!hasData) {
      return {
        body: 'message',
        message: b,
        banners,
        shortText: trans.__('GPU offline')
      };
    }
    banners.push(b);
  }

  if (!status) {
    if (conn.phase === 'connecting') {
      return {
        body: 'loading',
        message: {
          level: 'info',
          title: trans.__('Connecting to the GPU service…'),
          detail: null
        },
        banners,
        shortText: trans.__('GPU …')
      };
    }
  } else {
    if (status.source === 'replay') {
      banners.push({
        level: 'info',
        title: trans.__('Recorded data (replay)'),
        detail: trans.__(
          "Not this machine's GPUs: replaying %1.",
          status.replay_file ? status.replay_file : trans.__('a recorded trace')
        )
      });
    }
    if (status.state !== 'ok') {
      const text = stateText(status.state, trans);
      const m: IBanner = {
        level: status.state === 'error' ? 'error' : 'info',
        title: text.title,
        // The server's own message is the specific one; the hint is the fallback.
        detail: status.message || text.hint
      };
      if (!hasData) {
        const shortText =
          status.state === 'starting' ? trans.__('GPU …') : trans.__('No GPU');
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
        title: trans.__('Sampler errors'),
        detail: trans.__(
          '%1 failed reads; last: %2',
          status.sampler.errors,
          status.sampler.last_error
        )
      });
    }
  }

  if (gpuCount === null) {
    return {
      body: 'loading',
      message: {
        level: 'info',
        title: trans.__('Waiting for the first reading…'),
        detail: null
      },
      banners,
      shortText: trans.__('GPU …')
    };
  }
  if (gpuCount === 0) {
    const m: IBanner = {
      level: 'info',
      title: trans.__('No NVIDIA GPU found'),
      detail: status?.message ?? null
    };
    return {
      body: 'message',
      message: m,
      banners,
      shortText: trans.__('No GPU')
    };
  }
  return { body: 'gpus', message: null, banners, shortText: null };
}

/** Per-GPU state words shown on a card that is not 'ok'. */
export function gpuStateText(
  state: string,
  error: string | null,
  trans: ITrans = plainTrans
): string | null {
  switch (state) {
    case 'ok':
      return null;
    case 'lost':
      return trans.__(
        'GPU lost: it fell off the bus (Xid 79). A reboot or GPU reset is needed.'
      );
    case 'unresponsive':
      return trans.__('GPU not responding: the last query timed out.');
    default:
      return error ? trans.__('GPU error: %1', error) : trans.__('GPU error');
  }
}
