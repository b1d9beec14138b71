/**
 * The one stream socket of a tab: opens it through the API client, retries
 * with backoff and jitter, asks over REST whether a failing server lacks
 * the extension (404), and closes a socket that went silent (a proxy that
 * dropped it, a wedged server). The store owns the state; this owns the
 * socket and its timers.
 */
import { ApiError, GpuApiClient } from './api';
import { backoffDelay, ConnEvent, IConnection } from './connection';
import { StreamMessage, StreamRequest } from './types';

/** WebSocket.OPEN, spelled out so this also runs where no global WebSocket exists (tests). */
const WS_OPEN = 1;

export interface IStreamHandlers {
  /** A parsed message from the server. */
  message(msg: StreamMessage): void;
  /** A connection event for the store's state machine. */
  dispatch(e: ConnEvent): void;
  /** The connection state as the store holds it. */
  conn(): IConnection;
  /** Once a second while not live: the retry countdown moves. */
  countdown(): void;
  /** How long a live socket may stay silent before it is closed (ms). */
  stallLimitMs(): number;
}

export class StreamSocket {
  constructor(
    private _client: GpuApiClient,
    private _h: IStreamHandlers
  ) {}

  /** How many sockets this has opened (for tests and debugging). */
  get opened(): number {
    return this._opened;
  }

  start(): void {
    this._connect();
    this._timer = window.setInterval(() => this._onTimer(), 1000);
  }

  dispose(): void {
    this._disposed = true;
    window.clearInterval(this._timer);
    window.clearTimeout(this._retryTimer);
    if (this._ws) {
      this._ws.onclose = null;
      this._ws.close();
      this._ws = null;
    }
  }

  /** Send a request when the socket is open; false when it is not (sent again on open by the store). */
  send(request: StreamRequest): boolean {
    const ws = this._ws;
    if (!ws || ws.readyState !== WS_OPEN) {
      return false;
    }
    ws.send(JSON.stringify(request));
    return true;
  }

  /** Skip the backoff wait and try now (the "Retry now" button). */
  retryNow(): void {
    if (this._ws || this._disposed) {
      return;
    }
    window.clearTimeout(this._retryTimer);
    this._connect();
  }

  /** Called when the socket opens: the store sends its request then. */
  onOpen: (() => void) | null = null;

  private _connect(): void {
    if (this._disposed) {
      return;
    }
    this._h.dispatch({ type: 'connecting' });
    let ws: WebSocket;
    try {
      ws = this._client.openStream();
    } catch (err) {
      this._onClosed((err as Error).message);
      return;
    }
    this._opened++;
    this._ws = ws;
    this._lastMessageAt = Date.now();
    ws.onopen = () => {
      this._lastMessageAt = Date.now();
      this.onOpen?.();
    };
    ws.onmessage = ev => {
      this._lastMessageAt = Date.now();
      let msg: StreamMessage;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this._h.message(msg);
    };
    ws.onclose = ev => {
      if (this._ws !== ws) {
        return;
      }
      this._ws = null;
      this._onClosed(ev.reason || `socket closed (${ev.code})`);
    };
    ws.onerror = () => {
      // onclose follows and handles the retry.
    };
  }

  private _onClosed(reason: string): void {
    if (this._disposed) {
      return;
    }
    const failures = this._h.conn().failures + 1;
    const delay = backoffDelay(failures, Math.random());
    this._h.dispatch({ type: 'closed', reason, retryAt: Date.now() + delay });
    this._retryTimer = window.setTimeout(() => void this._retry(), delay);
  }

  private async _retry(): Promise<void> {
    // A missing extension answers 404 over REST; the socket only says "closed".
    // Ask once per retry so the panel can say which it is.
    try {
      await this._client.status();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this._h.dispatch({ type: 'not-found' });
        this._retryTimer = window.setTimeout(() => void this._retry(), 30000);
        return;
      }
    }
    this._connect();
  }

  private _onTimer(): void {
    if (this._h.conn().phase !== 'live') {
      this._h.countdown();
      return;
    }
    if (this._ws && Date.now() - this._lastMessageAt > this._h.stallLimitMs()) {
      const ws = this._ws;
      this._ws = null;
      ws.onclose = null;
      ws.close();
      this._onClosed('no data from the server');
    }
  }

  private _ws: WebSocket | null = null;
  private _disposed = false;
  private _opened = 0;
  private _timer = 0;
  private _retryTimer = 0;
  private _lastMessageAt = 0;
}
