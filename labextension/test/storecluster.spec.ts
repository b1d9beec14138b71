/**
 * The store's cluster part: it polls GET cluster only while the Cluster
 * section is shown and the server has a Prometheus configured, hands every
 * answer to the widgets as `state.cluster` (a 'cluster' change), keeps the
 * last good document across errors, and stops with the section, the
 * configuration, or dispose.
 */
(globalThis as any).window = globalThis;

jest.mock('../src/api', () => ({
  ApiError: class extends Error {},
  GpuApiClient: class {}
}));

import { Cluster } from '../src/cluster/model';
import { NO_CLUSTER } from '../src/cluster/poller';
import { GpuStore } from '../src/store';
import { IStatus } from '../src/types';
import { status } from './fixtures';

class FakeSocket {
  readyState = 0;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  send() {
    return undefined;
  }
  close() {
    this.readyState = 3;
  }
  /** Opens and says hello with this status. */
  hello(s: IStatus) {
    this.readyState = 1;
    this.onopen?.();
    this.onmessage?.({ data: JSON.stringify({ type: 'hello', status: s }) });
  }
}

function clusterDoc(over: Partial<Cluster> = {}): Cluster {
  return {
    t: 1700000000,
    state: 'ok',
    message: null,
    show_users: false,
    truncated: null,
    nodes: [],
    summary: null,
    ...over
  };
}

/** A client whose cluster answers the test releases one by one. */
function makeClient() {
  const sockets: FakeSocket[] = [];
  const pending: {
    resolve: (d: Cluster) => void;
    reject: (e: Error) => void;
  }[] = [];
  const client = {
    openStream: jest.fn(() => {
      const ws = new FakeSocket();
      sockets.push(ws);
      return ws;
    }),
    history: jest.fn(async () => ({ now: 0, fields: [], gpus: [] })),
    devices: jest.fn(async () => []),
    benchmarks: jest.fn(async () => []),
    cluster: jest.fn(
      () =>
        new Promise<Cluster>((resolve, reject) =>
          pending.push({ resolve, reject })
        )
    )
  };
  return { client, sockets, pending };
}

async function flush() {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve();
  }
}

/** A started store whose socket said hello with `configured` Prometheus. */
function started(configured: boolean) {
  const c = makeClient();
  const store = new GpuStore({ client: c.client as any });
  const kinds: string[] = [];
  store.changed.connect((_, k) => kinds.push(k));
  store.start();
  c.sockets[0].hello(status({ cluster_configured: configured }));
  return { ...c, store, kinds };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('GpuStore: the cluster', () => {
  it('starts with no document and asks nothing until the section is shown', () => {
    const { store, client } = started(true);
    expect(store.state.cluster).toEqual(NO_CLUSTER);
    jest.advanceTimersByTime(60000);
    expect(client.cluster).not.toHaveBeenCalled();
    store.dispose();
  });

  it('polls while the section is shown, into state.cluster', async () => {
    const { store, client, pending, kinds } = started(true);
    store.showCluster(true);
    expect(client.cluster).toHaveBeenCalledTimes(1);
    expect(store.state.cluster.fetching).toBe(true);
    expect(kinds).toContain('cluster');
    pending[0].resolve(clusterDoc({ t: 1 }));
    await flush();
    expect(store.state.cluster.doc?.t).toBe(1);
    expect(store.state.cluster.fetching).toBe(false);
    jest.advanceTimersByTime(10000);
    expect(client.cluster).toHaveBeenCalledTimes(2);
    pending[1].reject(new Error('502 Bad Gateway'));
    await flush();
    // the last good document stays, with the error
    expect(store.state.cluster.doc?.t).toBe(1);
    expect(store.state.cluster.error).toBe('502 Bad Gateway');
    store.dispose();
  });

  it('stops when the section is hidden, and catches up when shown again', async () => {
    const { store, client, pending } = started(true);
    store.showCluster(true);
    pending[0].resolve(clusterDoc());
    await flush();
    store.showCluster(false);
    jest.advanceTimersByTime(60000);
    expect(client.cluster).toHaveBeenCalledTimes(1);
    store.showCluster(true);
    expect(client.cluster).toHaveBeenCalledTimes(2);
    store.dispose();
  });

  it('never polls a server without Prometheus, shown or not', () => {
    const { store, client } = started(false);
    store.showCluster(true);
    jest.advanceTimersByTime(60000);
    expect(client.cluster).not.toHaveBeenCalled();
    expect(store.state.cluster).toEqual(NO_CLUSTER);
    store.dispose();
  });

  it('waits for the hello that says Prometheus is configured', () => {
    const c = makeClient();
    const store = new GpuStore({ client: c.client as any });
    store.start();
    store.showCluster(true); // shown before the server said anything
    expect(c.client.cluster).not.toHaveBeenCalled();
    c.sockets[0].hello(status({ cluster_configured: true }));
    expect(c.client.cluster).toHaveBeenCalledTimes(1);
    store.dispose();
  });

  it('refreshes on demand, joining a request in flight', async () => {
    const { store, client, pending } = started(true);
    store.showCluster(true);
    const a = store.refreshCluster();
    expect(client.cluster).toHaveBeenCalledTimes(1);
    pending[0].resolve(clusterDoc({ t: 7 }));
    await a;
    expect(store.state.cluster.doc?.t).toBe(7);
    void store.refreshCluster();
    expect(client.cluster).toHaveBeenCalledTimes(2);
    store.dispose();
  });

  it('asks nothing more after dispose', async () => {
    const { store, client, pending, kinds } = started(true);
    store.showCluster(true);
    store.dispose();
    const seen = kinds.length;
    pending[0].resolve(clusterDoc());
    await flush();
    jest.advanceTimersByTime(60000);
    expect(client.cluster).toHaveBeenCalledTimes(1);
    expect(kinds.length).toBe(seen);
  });
});
