/**
 * The one store per browser tab, fed by the one stream socket: status,
 * ticks, the kernels document (pushed when it changes), seeded history, the
 * benchmark templates, and the cluster document (polled over REST while the
 * Cluster section is shown). Widgets only read `store.state` and listen to
 * `changed`; user actions go back through store methods. Data flows one
 * way: socket/REST -> store -> widgets.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { GpuApiClient } from './api';
import { ClusterPoller, IClusterResult, NO_CLUSTER } from './cluster/poller';
import {
  appendSnapshot,
  CHART_FIELDS,
  latestTime,
  mergeSeriesMaps,
  SeriesMap,
  seriesFromHistory,
  trimSeries
} from './history';
import { IKernelAlertHandlers, KernelAlerts } from './kernelalerts';
import { TickMeter } from './perf';
import {
  ConnEvent,
  IConnection,
  initialConnection,
  reduceConnection
} from './connection';
import { StreamSocket } from './stream';
import {
  IBenchmarkTemplate,
  ICulledKernel,
  IDeviceInfo,
  IKernelInfo,
  IKernelsReply,
  IProbeLoaded,
  IReleaseReply,
  IScriptInfo,
  ISnapshot,
  IStatus,
  ITriageRequested,
  StreamMessage
} from './types';

export type ChangeKind =
  'tick' | 'status' | 'conn' | 'history' | 'kernels' | 'benchmarks' | 'cluster';

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
  /** null: the stream has not sent the kernels document yet. */
  kernels: IKernelInfo[] | null;
  /** Processes outside any kernel that run the memory probe; same document. */
  scripts: IScriptInfo[];
  /** Kernels the server shut down for sitting idle on GPU memory (newest last); same document. */
  culled: ICulledKernel[];
  /** The last explicit refresh's error, null once a document arrives. */
  kernelsError: string | null;
  benchmarks: IBenchmarkTemplate[];
  /** GET cluster's last answer (the last good document is kept across errors). */
  cluster: IClusterResult;
}

export interface IStoreOptions extends IKernelAlertHandlers {
  client: GpuApiClient;
}

/** Longest chart window; the history kept in the browser. */
export const KEEP_SECONDS = 3600;

export class GpuStore {
  constructor(options: IStoreOptions) {
    this.client = options.client;
    this._alerts = new KernelAlerts(options);
    this._socket = new StreamSocket(this.client, {
      message: msg => this._onMessage(msg),
      dispatch: e => this._dispatch(e),
      conn: () => this._state.conn,
      countdown: () => this._changed.emit('conn'),
      stallLimitMs: () => {
        const s = this._state;
        return Math.max(
          10000,
          5000 * (s.effectiveInterval ?? s.status?.interval ?? 1)
        );
      }
    });
    this._socket.onOpen = () => this._sendConfig();
    this._cluster = new ClusterPoller(
      () => this.client.cluster(),
      cluster => {
        this._state = { ...this._state, cluster };
        this._changed.emit('cluster');
      }
    );
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
    return this._socket.opened;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  start(): void {
    if (this._started) {
      return;
    }
    this._started = true;
    this._socket.start();
    void this.loadBenchmarks();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._socket.dispose();
    this._cluster.dispose();
    Signal.clearData(this);
  }

  /** Ask the server for a new tick rate (clamped to its floor by the server too). */
  setInterval(seconds: number): void {
    this._wantedInterval = seconds;
    this._sendConfig();
  }

  setLeakHorizon(seconds: number, enabled: boolean): void {
    this._alerts.setLeakHorizon(seconds, enabled);
  }

  /**
   * The Cluster section is on screen (panel shown, section open, browser
   * tab shown) or not: the cluster is polled only while it is and the
   * server has a Prometheus configured.
   */
  showCluster(shown: boolean): void {
    this._clusterShown = shown;
    this._pollCluster();
  }

  /** The cluster document now (the section's Refresh; joins a request in flight). */
  refreshCluster(): Promise<void> {
    return this._cluster.refresh();
  }

  /** Skip the backoff wait and try now (the "Retry now" button). */
  retryNow(): void {
    this._socket.retryNow();
  }

  /** The kernels document now, over REST (the Refresh button; after an action). */
  async refreshKernels(): Promise<void> {
    try {
      this._setKernels(await this.client.kernels(true));
    } catch (err) {
      this._state = { ...this._state, kernelsError: (err as Error).message };
      this._changed.emit('kernels');
    }
  }

  /** Load the memory probe in a kernel; resolves with the kernel's answer, ok or not. */
  async loadProbe(kernelId: string): Promise<IProbeLoaded> {
    const reply = await this.client.loadProbe(kernelId);
    if (reply.ok) {
      void this.refreshKernels();
    }
    return reply;
  }

  /** "Find the leaking line" in a kernel's probe; rejects with the server's message (409). */
  async kernelTriage(kernelId: string): Promise<ITriageRequested> {
    const r = await this.client.kernelTriage(kernelId);
    await this.refreshKernels();
    return r;
  }

  /**
   * *Release cached memory* in an idle kernel: resolves with the server's
   * answer (its message says what was released), then the kernels list is
   * read again; rejects with the server's message (409: the kernel is busy).
   */
  async releaseCache(kernelId: string): Promise<IReleaseReply> {
    const r = await this.client.release(kernelId);
    void this.refreshKernels();
    return r;
  }

  /** "Find the leaking line" for a script's probe (no kernel); rejects with the server's message (404). */
  async scriptTriage(pid: number): Promise<ITriageRequested> {
    const r = await this.client.probeTriage(pid);
    await this.refreshKernels();
    return r;
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
    this._meter.skip();
  }

  /** Called by the panel once a tick is on screen: records its cost. */
  markTickRendered(): void {
    this._meter.rendered();
  }

  private _sendConfig(): void {
    if (this._wantedInterval !== null) {
      this._socket.send({ interval: this._wantedInterval });
    }
  }

  private _onMessage(msg: StreamMessage): void {
    switch (msg.type) {
      case 'hello':
        this._state = { ...this._state, status: msg.status };
        this._dispatch({ type: 'hello' });
        this._changed.emit('status');
        this._pollCluster();
        void this._seed();
        if (this._state.devices.size === 0) {
          void this._loadDevices();
        }
        break;
      case 'snapshot':
        this._onSnapshot(msg.snapshot);
        break;
      case 'kernels':
        this._setKernels(msg.kernels);
        break;
      case 'config':
        this._state = { ...this._state, effectiveInterval: msg.interval };
        this._changed.emit('status');
        break;
      default:
        break;
    }
  }

  private _pollCluster(): void {
    const configured = this._state.status?.cluster_configured === true;
    this._cluster.setActive(this._clusterShown && configured);
  }

  private _setKernels(doc: IKernelsReply): void {
    const { kernels, scripts } = doc;
    const culled = doc.culled ?? [];
    this._state = {
      ...this._state,
      kernels,
      scripts,
      culled,
      kernelsError: null
    };
    this._alerts.update(kernels, scripts);
    this._changed.emit('kernels');
  }

  private _onSnapshot(snap: ISnapshot): void {
    this._meter.start();
    const keep = Math.min(
      KEEP_SECONDS,
      this._state.status?.history_seconds || KEEP_SECONDS
    );
    appendSnapshot(this._state.series, snap, keep);
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
    culled: [],
    kernelsError: null,
    benchmarks: [],
    cluster: NO_CLUSTER
  };
  private _changed = new Signal<this, ChangeKind>(this);
  private _socket: StreamSocket;
  private _cluster: ClusterPoller;
  private _clusterShown = false;
  private _started = false;
  private _disposed = false;
  private _wantedInterval: number | null = null;
  private _meter = new TickMeter();
  private _alerts: KernelAlerts;
}
