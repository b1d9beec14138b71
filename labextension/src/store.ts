/**
 * The one store per browser tab: owns the one stream socket (with
 * reconnect/backoff), the history series, the kernels poll, and the
 * benchmark templates. Widgets only read `store.state` and listen to
 * `changed`; user actions go back through store/client methods. Data flows
 * one way: socket/REST -> store -> widgets.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, GpuApiClient, KernelAction } from './api';
import {
  appendReading,
  CHART_FIELDS,
  latestTime,
  mergeSeriesMaps,
  SeriesMap,
  seriesFromHistory,
  trimSeries,
  emptySeries
} from './history';
import { updateEpisodes } from './leakepisodes';
import {
  backoffDelay,
  ConnEvent,
  IConnection,
  initialConnection,
  reduceConnection
} from './state';
import {
  IBenchmarkTemplate,
  IDeviceInfo,
  IKernelInfo,
  IScriptInfo,
  ISnapshot,
  IStatus,
  StreamMessage,
  StreamRequest
} from './types';

export type ChangeKind =
  'tick' | 'status' | 'conn' | 'history' | 'kernels' | 'benchmarks';

export interface IStoreState {
  conn: IConnection;
  status: IStatus | null;
  devices: Map<number, IDeviceInfo>;
  snapshot: ISnapshot | null;
  series: SeriesMap;
  /** Bumped on every series change, so charts know to redraw. */
  seriesVersion: number;
  /** Interval the server confirmed for this socket. */
  effectiveInterval: number | null;
  /** null: not loaded yet. */
  kernels: IKernelInfo[] | null;
  /** Processes outside any kernel that run the memory probe; from the same poll. */
  scripts: IScriptInfo[];
  /** The last kernels poll's error, null once one succeeds. */
  kernelsError: string | null;
  benchmarks: IBenchmarkTemplate[];
}

export interface IStoreOptions {
  client: GpuApiClient;
  /** Called once per kernel per leak episode. */
  onLeak?: (k: IKernelInfo) => void;
  /** Called once per probed script per leak episode. */
  onScriptLeak?: (s: IScriptInfo) => void;
  kernelsPollMs?: number;
}

/** Longest chart window; the history kept in the browser. */
export const KEEP_SECONDS = 3600;
const TICK_MARK = 'gpu-panel:tick-start';
export const TICK_MEASURE = 'gpu-panel:tick';
/** WebSocket.OPEN, spelled out so the store also runs where no global WebSocket exists (tests). */
const WS_OPEN = 1;

export class GpuStore {
  constructor(options: IStoreOptions) {
    this.client = options.client;
    this._onLeak = options.onLeak ?? null;
    this._onScriptLeak = options.onScriptLeak ?? null;
    this._kernelsPollMs = options.kernelsPollMs ?? 5000;
  }

  readonly client: GpuApiClient;

  get state(): Readonly<IStoreState> {
    return this._state;
  }

  get changed(): ISignal<this, ChangeKind> {
    return this._changed;
  }

  /** How many stream sockets this store has opened (for tests and debugging). */
  get socketsOpened(): number {
    return this._socketsOpened;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  start(): void {
    if (this._started) {
      return;
    }
    this._started = true;
    this._connect();
    void this._pollKernels();
    void this.loadBenchmarks();
    // Drives the retry countdown and the stall watchdog.
    this._timer = window.setInterval(() => this._onTimer(), 1000);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    window.clearInterval(this._timer);
    window.clearTimeout(this._retryTimer);
    window.clearTimeout(this._kernelsTimer);
    if (this._ws) {
      this._ws.onclose = null;
      this._ws.close();
      this._ws = null;
    }
    Signal.clearData(this);
  }

  /** Ask the server for a new tick rate (clamped to its floor by the server too). */
  setInterval(seconds: number): void {
    this._wantedInterval = seconds;
    this._sendConfig();
  }

  setLeakHorizon(seconds: number, enabled: boolean): void {
    this._leakHorizon = seconds;
    this._leakNotify = enabled;
  }

  /** Skip the backoff wait and try now (the "Retry now" button). */
  retryNow(): void {
    if (this._ws || this._disposed) {
      return;
    }
    window.clearTimeout(this._retryTimer);
    this._connect();
  }

  async kernelAction(id: string, action: KernelAction): Promise<void> {
    await this.client.kernelAction(id, action);
    await this._pollKernels(false);
  }

  /** "Find the leaking line" for a script's probe (no kernel): the server asks it to record. */
  async scriptTriage(pid: number): Promise<void> {
    await this.client.probeTriage(pid);
    await this._pollKernels(false);
  }

  async loadBenchmarks(): Promise<void> {
    try {
      const templates = await this.client.benchmarks();
      this._state = { ...this._state, benchmarks: templates };
      this._changed.emit('benchmarks');
    } catch {
      // Server unreachable (the stream's banner says so): no templates, no error here.
      this._state = { ...this._state, benchmarks: [] };
    }
  }

  /** A tick that will not be drawn (panel hidden): not a cost to record. */
  skipTick(): void {
    this._tickPending = false;
  }

  /** Called by the panel once a tick is on screen: records its cost. */
  markTickRendered(): void {
    if (!this._tickPending) {
      return;
    }
    this._tickPending = false;
    try {
      performance.measure(TICK_MEASURE, TICK_MARK);
      performance.clearMarks(TICK_MARK);
      // Bound the buffer: a panel left open for a day must not grow it forever.
      if (performance.getEntriesByName(TICK_MEASURE).length > 500) {
        performance.clearMeasures(TICK_MEASURE);
      }
    } catch {
      // Performance API missing (tests): nothing to record.
    }
  }

  private _connect(): void {
    if (this._disposed) {
      return;
    }
    this._dispatch({ type: 'connecting' });
    let ws: WebSocket;
    try {
      ws = this.client.openStream();
    } catch (err) {
      this._onClosed((err as Error).message);
      return;
    }
    this._socketsOpened++;
    this._ws = ws;
    this._lastMessageAt = Date.now();
    ws.onopen = () => {
      this._lastMessageAt = Date.now();
      this._sendConfig();
    };
    ws.onmessage = ev => {
      this._lastMessageAt = Date.now();
      let msg: StreamMessage;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this._onMessage(msg);
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
    const failures = this._state.conn.failures + 1;
    const delay = backoffDelay(failures, Math.random());
    this._dispatch({ type: 'closed', reason, retryAt: Date.now() + delay });
    this._retryTimer = window.setTimeout(() => void this._retry(), delay);
  }

  private async _retry(): Promise<void> {
    // A missing extension answers 404 over REST; the socket only says "closed".
    // Ask once per retry so the panel can say which it is.
    try {
      await this.client.status();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this._dispatch({ type: 'not-found' });
        this._retryTimer = window.setTimeout(() => void this._retry(), 30000);
        return;
      }
    }
    this._connect();
  }

  private _onTimer(): void {
    const c = this._state.conn;
    if (c.phase !== 'live') {
      // Retry countdown in the banner.
      this._changed.emit('conn');
      return;
    }
    // A socket can stay "open" while nothing arrives (proxy dropped it,
    // server wedged): close it so the reconnect path runs.
    const interval =
      this._state.effectiveInterval ?? this._state.status?.interval ?? 1;
    const limit = Math.max(10000, 5000 * interval);
    if (this._ws && Date.now() - this._lastMessageAt > limit) {
      const ws = this._ws;
      this._ws = null;
      ws.onclose = null;
      ws.close();
      this._onClosed('no data from the server');
    }
  }

  private _sendConfig(): void {
    const ws = this._ws;
    if (!ws || ws.readyState !== WS_OPEN || this._wantedInterval === null) {
      return;
    }
    const request: StreamRequest = { interval: this._wantedInterval };
    ws.send(JSON.stringify(request));
  }

  private _onMessage(msg: StreamMessage): void {
    switch (msg.type) {
      case 'hello':
        this._state = { ...this._state, status: msg.status };
        this._dispatch({ type: 'hello' });
        this._changed.emit('status');
        void this._seed();
        if (this._state.devices.size === 0) {
          void this._loadDevices();
        }
        break;
      case 'snapshot':
        this._onSnapshot(msg.snapshot);
        break;
      case 'config':
        this._state = { ...this._state, effectiveInterval: msg.interval };
        this._changed.emit('status');
        break;
      default:
        break;
    }
  }

  private _onSnapshot(snap: ISnapshot): void {
    try {
      performance.mark(TICK_MARK);
      this._tickPending = true;
    } catch {
      // no Performance API
    }
    const series = this._state.series;
    let keep = KEEP_SECONDS;
    if (this._state.status?.history_seconds) {
      keep = Math.min(keep, this._state.status.history_seconds);
    }
    for (const g of snap.gpus || []) {
      let s = series.get(g.index);
      if (!s) {
        s = emptySeries(CHART_FIELDS);
        series.set(g.index, s);
      }
      const next = appendReading(s, g, CHART_FIELDS);
      if (next !== s) {
        series.set(g.index, next);
      }
      trimSeries(series.get(g.index)!, g.t - keep);
    }
    let status = this._state.status;
    if (
      status &&
      (status.state !== snap.state || status.message !== snap.message)
    ) {
      // The source's state can change between hellos (driver unloaded, GPU lost).
      status = { ...status, state: snap.state, message: snap.message };
    }
    this._state = {
      ...this._state,
      status,
      snapshot: snap,
      seriesVersion: this._state.seriesVersion + 1
    };
    this._changed.emit('tick');
  }

  /** Fill the charts from the server's history: on first connect and after each reconnect. */
  private async _seed(): Promise<void> {
    const latest = latestTime(this._state.series);
    // since=0 asks for all the server keeps; after a reconnect only the gap.
    const since = latest === null ? 0 : latest - 1;
    try {
      const resp = await this.client.history(since, CHART_FIELDS, 4000);
      const seed = seriesFromHistory(resp, CHART_FIELDS);
      const merged = mergeSeriesMaps(this._state.series, seed, CHART_FIELDS);
      for (const s of merged.values()) {
        if (s.t.length) {
          trimSeries(s, s.t[s.t.length - 1] - KEEP_SECONDS, 0);
        }
      }
      this._state = {
        ...this._state,
        series: merged,
        seriesVersion: this._state.seriesVersion + 1
      };
      this._changed.emit('history');
    } catch (err) {
      console.warn('gpu-panel: history unavailable', err);
    }
  }

  private async _loadDevices(): Promise<void> {
    try {
      const list = await this.client.devices();
      const devices = new Map<number, IDeviceInfo>();
      for (const d of list) {
        devices.set(d.index, d);
      }
      this._state = { ...this._state, devices };
      this._changed.emit('status');
    } catch (err) {
      console.warn('gpu-panel: devices unavailable', err);
    }
  }

  private async _pollKernels(reschedule = true): Promise<void> {
    if (this._disposed) {
      return;
    }
    if (
      typeof document === 'undefined' ||
      !document.hidden ||
      this._leakNotify
    ) {
      try {
        const { kernels, scripts } = await this.client.kernels();
        this._state = {
          ...this._state,
          kernels,
          scripts,
          kernelsError: null
        };
        if (this._leakNotify) {
          const u = updateEpisodes(
            this._leakEpisodes,
            kernels,
            this._leakHorizon,
            scripts
          );
          this._leakEpisodes = u.open;
          for (const k of u.notify) {
            this._onLeak?.(k);
          }
          for (const sc of u.notifyScripts) {
            this._onScriptLeak?.(sc);
          }
        }
      } catch (err) {
        this._state = { ...this._state, kernelsError: (err as Error).message };
      }
      this._changed.emit('kernels');
    }
    if (reschedule && !this._disposed) {
      this._kernelsTimer = window.setTimeout(
        () => void this._pollKernels(),
        this._kernelsPollMs
      );
    }
  }

  private _dispatch(e: ConnEvent): void {
    const conn = reduceConnection(this._state.conn, e);
    if (conn !== this._state.conn) {
      this._state = { ...this._state, conn };
      this._changed.emit('conn');
    }
  }

  private _state: IStoreState = {
    conn: initialConnection,
    status: null,
    devices: new Map(),
    snapshot: null,
    series: new Map(),
    seriesVersion: 0,
    effectiveInterval: null,
    kernels: null,
    scripts: [],
    kernelsError: null,
    benchmarks: []
  };
  private _changed = new Signal<this, ChangeKind>(this);
  private _ws: WebSocket | null = null;
  private _started = false;
  private _disposed = false;
  private _socketsOpened = 0;
  private _timer = 0;
  private _retryTimer = 0;
  private _kernelsTimer = 0;
  private _lastMessageAt = 0;
  private _wantedInterval: number | null = null;
  private _tickPending = false;
  private _onLeak: ((k: IKernelInfo) => void) | null;
  private _onScriptLeak: ((s: IScriptInfo) => void) | null;
  private _kernelsPollMs: number;
  private _leakHorizon = 1800;
  private _leakNotify = true;
  private _leakEpisodes: Set<string> = new Set();
}
