import {
  backoffDelay,
  IConnection,
  initialConnection,
  reduceConnection,
  UNREACHABLE_AFTER
} from '../src/connection';

const live: IConnection = reduceConnection(initialConnection, {
  type: 'hello'
});

describe('connection state machine', () => {
  it('goes live on hello and resets failures', () => {
    expect(live.phase).toBe('live');
    expect(live.everLive).toBe(true);
    const c = reduceConnection({ ...live, failures: 5 }, { type: 'hello' });
    expect(c.failures).toBe(0);
  });

  it('reconnects, then calls the server unreachable after repeated failures', () => {
    let c = live;
    for (let i = 1; i < UNREACHABLE_AFTER; i++) {
      c = reduceConnection(c, { type: 'closed', retryAt: 1000 * i });
      expect(c.phase).toBe('reconnecting');
    }
    c = reduceConnection(c, { type: 'connecting' });
    expect(c.phase).toBe('reconnecting'); // no flicker while retrying
    c = reduceConnection(c, { type: 'closed', reason: 'refused', retryAt: 9 });
    expect(c.phase).toBe('unreachable');
    expect(c.lastError).toBe('refused');
    expect(reduceConnection(c, { type: 'hello' }).phase).toBe('live');
  });

  it('names a missing server extension', () => {
    expect(
      reduceConnection(initialConnection, { type: 'not-found' }).phase
    ).toBe('no-extension');
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelay(1, 0.5)).toBe(500);
    expect(backoffDelay(2, 0.5)).toBe(1000);
    expect(backoffDelay(4, 0.5)).toBe(4000);
    expect(backoffDelay(20, 0.5)).toBe(15000);
    expect(backoffDelay(1, 0)).toBe(400);
    expect(backoffDelay(1, 0.999)).toBeLessThanOrEqual(600);
  });
});
