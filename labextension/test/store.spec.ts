/**
 * The store against a fake socket and a fake API client: one socket, seeding
 * from history, growing from ticks, reconnect with backoff, 404 handling,
 * leak notifications once per episode.
 */
(globalThis as any).window = globalThis;

class FakeApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

jest.mock('../src/api', () => ({
  ApiError: FakeApiError,
  GpuApiClient: class {}
}));

import { GpuStore } from '../src/store';
import {
  IKernelInfo,
  IKernelsReply,
  IScriptInfo,
  ISnapshot
} from '../src/types';
import {
  gpu,
  kernel,
  probe,
  script,
  status,
  stepsVerdict,
  triage
} from './fixtures';

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor() {
    FakeSocket.all.push(this);
  }
  send(s: string) {
    this.sent.push(s);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  recv(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
}

const STATUS = status({ source: 'replay', replay_file: 'x' });

function snap(t: number, util: number): ISnapshot {
  return {
    t,
    source: 'replay',
    state: 'ok',
    message: null,
    gpus: [gpu({ t, util_gpu: util, mem_used: 1 })]
  };
}

function doc(
  kernels: IKernelInfo[],
  scripts: IScriptInfo[] = []
): IKernelsReply {
  return {
    kernels,
    scripts,
    pid_namespace: 'host',
    probe_warnings: [],
    culled: []
  };
}

/** A live socket, as after the server's hello. */
function connected(store: GpuStore): FakeSocket {
  store.start();
  const ws = FakeSocket.all[FakeSocket.all.length - 1];
  ws.open();
  ws.recv({ type: 'hello', status: STATUS });
  return ws;
}

function leakyKernel(actionable: boolean): IKernelInfo {
  return kernel({
    notebook: 'a.ipynb',
    leak: stepsVerdict({ actionable, seconds_to_oom: 60 })
  });
}

/** A probe asked to record its allocations for the next 4 steps. */
const recording = probe({
  steps: 10,
  triage: triage({
    state: 'requested',
    t: null,
    message: null
  })
});

function makeClient(over: Partial<Record<string, jest.Mock>> = {}) {
  return {
    openStream: jest.fn(() => new FakeSocket()),
    history: jest.fn(async () => ({
      now: 10,
      fields: [],
      gpus: [{ index: 0, t: [1, 2, 3], values: { util_gpu: [10, 20, 30] } }]
    })),
    devices: jest.fn(async () => [{ index: 0, name: 'NVIDIA H100 80GB HBM3' }]),
    status: jest.fn(async () => STATUS),
    kernels: jest.fn(async () => doc([])),
    benchmarks: jest.fn(async () => {
      throw new FakeApiError(404, 'nope');
    }),
    kernelTriage: jest.fn(async () => ({ requested: true, steps: 4 })),
    loadProbe: jest.fn(async () => ({
      kernel_id: 'k1',
      action: 'probe',
      ok: true,
      queued: false,
      message:
        'jupyter-gpu-panel: tracking GPU memory after every optimizer step (cuda:0).'
    })),
    probeTriage: jest.fn(async () => ({ requested: true, steps: 4 })),
    release: jest.fn(async () => ({
      kernel_id: 'k1',
      action: 'release',
      ok: true,
      message: 'Nothing could be released.'
    })),
    ...over
  };
}

async function flush() {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve();
  }
}

beforeEach(() => {
  FakeSocket.all = [];
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('GpuStore', () => {
  it('opens one socket, seeds from history, then grows from ticks', async () => {
    const client = makeClient();
    const store = new GpuStore({ client: client as any });
    const kinds: string[] = [];
    store.changed.connect((_, k) => kinds.push(k));
    store.start();
    store.start(); // idempotent: still one socket
    expect(FakeSocket.all).toHaveLength(1);
    const ws = FakeSocket.all[0];
    store.setInterval(0.5);
    ws.open();
    expect(JSON.parse(ws.sent[ws.sent.length - 1])).toEqual({ interval: 0.5 });
    ws.recv({ type: 'hello', status: STATUS });
    expect(store.state.conn.phase).toBe('live');
    await flush();
    expect(client.history).toHaveBeenCalledWith(
      0,
      expect.any(Array),
      expect.any(Number)
    );
    expect(store.state.series.get(0)!.t).toEqual([1, 2, 3]);
    expect(store.state.devices.get(0)?.name).toBe('NVIDIA H100 80GB HBM3');
    ws.recv({ type: 'snapshot', snapshot: snap(4, 40) });
    expect(store.state.series.get(0)!.t).toEqual([1, 2, 3, 4]);
    expect(store.state.series.get(0)!.values.util_gpu).toEqual([
      10, 20, 30, 40
    ]);
    expect(store.state.snapshot?.t).toBe(4);
    ws.recv({ type: 'config', interval: 0.5 });
    expect(store.state.effectiveInterval).toBe(0.5);
    expect(kinds).toEqual(
      expect.arrayContaining(['conn', 'status', 'history', 'tick'])
    );
    expect(store.socketsOpened).toBe(1);
    store.dispose();
  });

  it('reconnects with backoff and only fetches the gap', async () => {
    const client = makeClient();
    const store = new GpuStore({ client: client as any });
    store.start();
    const ws = FakeSocket.all[0];
    ws.open();
    ws.recv({ type: 'hello', status: STATUS });
    await flush();
    ws.recv({ type: 'snapshot', snapshot: snap(4, 40) });
    ws.drop();
    expect(store.state.conn.phase).toBe('reconnecting');
    expect(store.state.snapshot?.t).toBe(4); // last data kept on screen
    jest.advanceTimersByTime(700);
    await flush();
    expect(FakeSocket.all).toHaveLength(2);
    const ws2 = FakeSocket.all[1];
    ws2.open();
    ws2.recv({ type: 'hello', status: STATUS });
    await flush();
    expect(store.state.conn.phase).toBe('live');
    expect(client.history).toHaveBeenLastCalledWith(
      3,
      expect.any(Array),
      expect.any(Number)
    );
    store.dispose();
  });

  it('says unreachable after repeated failures', async () => {
    const client = makeClient({
      status: jest.fn(async () => {
        throw new FakeApiError(0, 'refused');
      })
    });
    const store = new GpuStore({ client: client as any });
    store.start();
    for (let i = 0; i < 3; i++) {
      FakeSocket.all[FakeSocket.all.length - 1].drop();
      jest.advanceTimersByTime(20000);
      await flush();
    }
    expect(store.state.conn.failures).toBeGreaterThanOrEqual(3);
    expect(store.state.conn.phase).toBe('unreachable');
    store.dispose();
  });

  it('closes a socket that went silent (watchdog)', async () => {
    const client = makeClient();
    const store = new GpuStore({ client: client as any });
    store.start();
    const ws = FakeSocket.all[0];
    ws.open();
    ws.recv({ type: 'hello', status: STATUS });
    jest.advanceTimersByTime(12000);
    expect(ws.readyState).toBe(3);
    expect(store.state.conn.phase).toBe('reconnecting');
    store.dispose();
  });

  it('recognises a server without the extension (404)', async () => {
    const client = makeClient({
      status: jest.fn(async () => {
        throw new FakeApiError(404, 'Not Found');
      })
    });
    const store = new GpuStore({ client: client as any });
    store.start();
    FakeSocket.all[0].drop();
    jest.advanceTimersByTime(1000);
    await flush();
    expect(store.state.conn.phase).toBe('no-extension');
    store.dispose();
  });

  it('takes the kernels document from the stream, and never polls for it', async () => {
    const client = makeClient();
    const store = new GpuStore({ client: client as any });
    const ws = connected(store);
    await flush();
    expect(store.state.kernels).toBeNull(); // not sent yet: "Loading…"
    ws.recv({ type: 'kernels', kernels: doc([kernel()], [script()]) });
    expect(store.state.kernels?.map(k => k.kernel_id)).toEqual(['k1']);
    expect(store.state.scripts.map(s => s.pid)).toEqual([4242]);
    jest.advanceTimersByTime(60000);
    await flush();
    expect(client.kernels).not.toHaveBeenCalled();
    store.dispose();
  });

  it('notifies a leak once per episode, and shows a failed refresh', async () => {
    const onLeak = jest.fn();
    const client = makeClient();
    const store = new GpuStore({ client: client as any, onLeak });
    store.setLeakHorizon(1800, true);
    const ws = connected(store);
    ws.recv({ type: 'kernels', kernels: doc([leakyKernel(true)]) });
    expect(store.state.kernels).toHaveLength(1);
    expect(onLeak).toHaveBeenCalledTimes(1);
    ws.recv({ type: 'kernels', kernels: doc([leakyKernel(true)]) });
    expect(onLeak).toHaveBeenCalledTimes(1); // same episode
    ws.recv({ type: 'kernels', kernels: doc([leakyKernel(false)]) });
    ws.recv({ type: 'kernels', kernels: doc([leakyKernel(true)]) });
    expect(onLeak).toHaveBeenCalledTimes(2); // new episode
    store.dispose();

    const failing = makeClient({
      kernels: jest.fn(async () => {
        throw new FakeApiError(500, 'Internal Server Error');
      })
    });
    const s2 = new GpuStore({ client: failing as any });
    await s2.refreshKernels();
    expect(failing.kernels).toHaveBeenCalledWith(true);
    expect(s2.state.kernels).toBeNull();
    expect(s2.state.kernelsError).toBe('Internal Server Error');
    s2.dispose();
  });

  it("returns the kernel's answer to Track memory, and refreshes only when the probe runs", async () => {
    const client = makeClient();
    const store = new GpuStore({ client: client as any });
    const ok = await store.loadProbe('k1');
    expect(ok.ok).toBe(true);
    expect(client.kernels).toHaveBeenCalledTimes(1);
    const noTorch = makeClient({
      loadProbe: jest.fn(async () => ({
        kernel_id: 'k1',
        action: 'probe',
        ok: false,
        queued: false,
        message:
          'jupyter-gpu-panel: torch is not installed: the GPU memory probe does nothing.'
      }))
    });
    const s2 = new GpuStore({ client: noTorch as any });
    const r = await s2.loadProbe('k1');
    expect(r.ok).toBe(false);
    expect(noTorch.kernels).not.toHaveBeenCalled();
    store.dispose();
    s2.dispose();
  });

  it('asks for a triage, then shows the kernels the server now reports', async () => {
    const requested: IKernelInfo = {
      ...leakyKernel(true),
      probe: recording
    };
    let kernels: IKernelInfo[] = [];
    const client = makeClient({
      kernels: jest.fn(async () => doc(kernels))
    });
    const store = new GpuStore({ client: client as any });
    kernels = [requested];
    await store.kernelTriage('k1');
    expect(client.kernelTriage).toHaveBeenCalledWith('k1');
    expect(store.state.kernels?.[0].probe?.triage?.state).toBe('requested');

    // No probe: the server's 409 message reaches the caller (the row shows it).
    const c409 = makeClient({
      kernelTriage: jest.fn(async () => {
        throw new FakeApiError(409, 'this kernel has no memory probe');
      })
    });
    const s2 = new GpuStore({ client: c409 as any });
    await expect(s2.kernelTriage('k1')).rejects.toThrow(
      'this kernel has no memory probe'
    );
    store.dispose();
    s2.dispose();
  });

  it('keeps the scripts of each kernels document, and notifies a script leak once per episode', async () => {
    const onLeak = jest.fn();
    const onScriptLeak = jest.fn();
    const leaky = (actionable: boolean): IScriptInfo =>
      script({ rank: '1', leak: leakyKernel(actionable).leak });
    const client = makeClient();
    const store = new GpuStore({
      client: client as any,
      onLeak,
      onScriptLeak
    });
    expect(store.state.scripts).toEqual([]);
    store.setLeakHorizon(1800, true);
    const ws = connected(store);
    ws.recv({ type: 'kernels', kernels: doc([], [leaky(true)]) });
    expect(store.state.scripts.map(s => s.pid)).toEqual([4242]);
    expect(onScriptLeak).toHaveBeenCalledTimes(1);
    expect(onScriptLeak.mock.calls[0][0].argv[0]).toBe('train.py');
    expect(onLeak).not.toHaveBeenCalled();
    ws.recv({ type: 'kernels', kernels: doc([], [leaky(true)]) });
    expect(onScriptLeak).toHaveBeenCalledTimes(1); // same episode
    ws.recv({ type: 'kernels', kernels: doc([], [leaky(false)]) });
    ws.recv({ type: 'kernels', kernels: doc([], [leaky(true)]) });
    expect(onScriptLeak).toHaveBeenCalledTimes(2); // new episode
    ws.recv({ type: 'kernels', kernels: doc([]) });
    expect(store.state.scripts).toEqual([]); // the script ended
    store.dispose();
  });

  it("asks a script's probe for a triage by pid, then shows what the server reports", async () => {
    const requested: IScriptInfo = {
      pid: 4242,
      argv: ['train.py'],
      rank: null,
      owner: null,
      probe: recording,
      leak: leakyKernel(true).leak
    };
    let scripts: IScriptInfo[] = [];
    const client = makeClient({
      kernels: jest.fn(async () => doc([], scripts))
    });
    const store = new GpuStore({ client: client as any });
    scripts = [requested];
    await store.scriptTriage(4242);
    expect(client.probeTriage).toHaveBeenCalledWith(4242);
    expect(client.kernelTriage).not.toHaveBeenCalled();
    expect(store.state.scripts[0].probe?.triage?.state).toBe('requested');

    // The probe is gone: the server's 404 message reaches the caller (the row shows it).
    const c404 = makeClient({
      probeTriage: jest.fn(async () => {
        throw new FakeApiError(404, 'no memory probe with pid 4242');
      })
    });
    const s2 = new GpuStore({ client: c404 as any });
    await expect(s2.scriptTriage(4242)).rejects.toThrow(
      'no memory probe with pid 4242'
    );
    store.dispose();
    s2.dispose();
  });

  it('notifies an idle holder once per episode, says when it ends, and keeps the culled list', async () => {
    const onIdleHolder = jest.fn();
    const onIdleHolderEnd = jest.fn();
    const store = new GpuStore({
      client: makeClient() as any,
      onIdleHolder,
      onIdleHolderEnd
    });
    const ws = connected(store);
    const holder = (on: boolean, seconds: number) =>
      kernel({
        execution_state: 'idle',
        idle: { seconds, holder: on, cached: null, message: null }
      });
    ws.recv({ type: 'kernels', kernels: doc([holder(false, 5)]) });
    expect(onIdleHolder).not.toHaveBeenCalled();
    ws.recv({ type: 'kernels', kernels: doc([holder(true, 900)]) });
    ws.recv({ type: 'kernels', kernels: doc([holder(true, 902)]) });
    expect(onIdleHolder).toHaveBeenCalledTimes(1); // same episode
    expect(onIdleHolder.mock.calls[0][0].kernel_id).toBe('k1');
    expect(onIdleHolderEnd).not.toHaveBeenCalled();
    ws.recv({ type: 'kernels', kernels: doc([holder(false, 0)]) });
    expect(onIdleHolderEnd).toHaveBeenCalledWith('k1');
    ws.recv({ type: 'kernels', kernels: doc([holder(true, 900)]) });
    expect(onIdleHolder).toHaveBeenCalledTimes(2); // a new episode

    const culled = [
      {
        kernel_id: 'k9',
        notebook: 'train.ipynb',
        t: 5,
        idle_seconds: 3600,
        memory: 1
      }
    ];
    ws.recv({ type: 'kernels', kernels: { ...doc([]), culled } });
    expect(store.state.culled).toEqual(culled);
    expect(onIdleHolderEnd).toHaveBeenCalledTimes(2); // k1 went away
    store.dispose();
  });

  it("releases a kernel's cache: the server's answer, then the kernels read again; a busy kernel's 409 reaches the row", async () => {
    const answer = {
      kernel_id: 'k1',
      action: 'release',
      ok: true,
      message: 'torch in this kernel has not used a GPU: nothing to release.'
    };
    const client = makeClient({ release: jest.fn(async () => answer) });
    const store = new GpuStore({ client: client as any });
    await expect(store.releaseCache('k1')).resolves.toEqual(answer);
    expect(client.release).toHaveBeenCalledWith('k1');
    await flush();
    expect(client.kernels).toHaveBeenCalledWith(true);

    const busy = makeClient({
      release: jest.fn(async () => {
        throw new FakeApiError(409, 'the kernel is busy');
      })
    });
    const s2 = new GpuStore({ client: busy as any });
    await expect(s2.releaseCache('k1')).rejects.toThrow('the kernel is busy');
    store.dispose();
    s2.dispose();
  });
});
