import { deriveView, gpuStateText } from '../src/banners';
import {
  IConnection,
  initialConnection,
  reduceConnection,
  UNREACHABLE_AFTER
} from '../src/connection';
import { SourceState } from '../src/types';
import { status } from './fixtures';

const live: IConnection = reduceConnection(initialConnection, {
  type: 'hello'
});

describe('deriveView: never a blank panel', () => {
  const base = {
    conn: live,
    status: status(),
    gpuCount: 1,
    lastDataT: 100,
    now: 0
  };

  it('shows GPUs when all is well, without banners', () => {
    const v = deriveView(base);
    expect(v.body).toBe('gpus');
    expect(v.banners).toEqual([]);
  });

  it('says connecting before anything is heard', () => {
    const v = deriveView({
      ...base,
      conn: initialConnection,
      status: null,
      gpuCount: null
    });
    expect(v.body).toBe('loading');
    expect(v.message?.title).toMatch(/Connecting/);
  });

  it('labels replay data as recorded', () => {
    const v = deriveView({
      ...base,
      status: status({ source: 'replay', replay_file: 'h100.nvml.jsonl' })
    });
    expect(v.body).toBe('gpus');
    expect(v.banners[0].title).toMatch(/Recorded data/);
    expect(v.banners[0].detail).toContain('h100.nvml.jsonl');
  });

  it.each<[SourceState, RegExp]>([
    ['nvml-missing', /NVML\) not found/],
    ['driver-not-loaded', /driver not loaded/],
    ['no-devices', /No NVIDIA GPU/],
    ['error', /Cannot read/]
  ])('explains source state %s', (state, re) => {
    const v = deriveView({
      ...base,
      status: status({ state, message: 'libnvidia-ml.so.1: cannot open' }),
      gpuCount: 0
    });
    expect(v.body).toBe('message');
    expect(v.message?.title).toMatch(re);
    expect(v.message?.detail).toContain('libnvidia-ml.so.1');
    expect(v.shortText).toBe('No GPU');
  });

  it('keeps last data with a reconnecting banner', () => {
    const conn = reduceConnection(live, { type: 'closed', retryAt: 5000 });
    const v = deriveView({ ...base, conn, now: 1000 });
    expect(v.body).toBe('gpus');
    expect(v.banners[0].title).toMatch(/Reconnecting/);
    expect(v.banners[0].detail).toMatch(/retrying in 4 s/);
    expect(v.banners[0].retry).toBe(true);
  });

  it('says unreachable with no data to show', () => {
    let conn = initialConnection;
    for (let i = 0; i < UNREACHABLE_AFTER; i++) {
      conn = reduceConnection(conn, { type: 'closed', retryAt: 0 });
    }
    const v = deriveView({
      conn,
      status: null,
      gpuCount: null,
      lastDataT: null,
      now: 10
    });
    expect(v.body).toBe('message');
    expect(v.message?.title).toMatch(/unreachable/);
    expect(v.shortText).toBe('GPU offline');
  });

  it('explains a missing server extension', () => {
    const conn = reduceConnection(initialConnection, { type: 'not-found' });
    const v = deriveView({ ...base, conn });
    expect(v.body).toBe('message');
    expect(v.message?.detail).toMatch(/server extension enable/);
  });

  it('says the server is starting, not that there is no GPU', () => {
    const v = deriveView({
      ...base,
      status: status({ state: 'starting' }),
      gpuCount: null
    });
    expect(v.body).toBe('message');
    expect(v.message?.title).toMatch(/Starting/);
    expect(v.message?.level).toBe('info');
    expect(v.shortText).toBe('GPU …');
  });

  it('waits for the first reading after hello', () => {
    const v = deriveView({ ...base, gpuCount: null });
    expect(v.body).toBe('loading');
  });

  it('reports sampler errors as a warning', () => {
    const v = deriveView({
      ...base,
      status: status({
        sampler: {
          running: true,
          ticks: 3,
          reads: 3,
          last_tick: 1,
          tick_ms: 1,
          errors: 2,
          last_error: 'timeout'
        }
      })
    });
    expect(
      v.banners.some(
        b => b.level === 'warning' && /timeout/.test(b.detail ?? '')
      )
    ).toBe(true);
  });
});

describe('per-GPU states', () => {
  it('words lost and unresponsive GPUs', () => {
    expect(gpuStateText('ok', null)).toBeNull();
    expect(gpuStateText('lost', null)).toMatch(/fell off the bus/);
    expect(gpuStateText('unresponsive', null)).toMatch(/not responding/);
    expect(gpuStateText('error', 'Unknown Error')).toBe(
      'GPU error: Unknown Error'
    );
  });
});
