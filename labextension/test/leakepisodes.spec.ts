import { isAlarming, updateEpisodes } from '../src/leakepisodes';
import { IKernelInfo, ILeakVerdict } from '../src/types';

function kernel(id: string, leak: Partial<ILeakVerdict> | null): IKernelInfo {
  return {
    kernel_id: id,
    kernel_name: 'python3',
    notebook: `${id}.ipynb`,
    execution_state: 'busy',
    pids: [1],
    memory: { '0': 1 },
    probe: null,
    leak: leak
      ? {
          leak: true,
          actionable: true,
          bytes_per_second: 1e6,
          seconds_to_oom: 600,
          steps_to_oom: null,
          message: 'grows',
          ...leak
        }
      : null
  };
}

describe('leak notifications', () => {
  it('alarms only on actionable leaks inside the horizon', () => {
    expect(isAlarming(kernel('a', {}), 1800)).toBe(true);
    expect(isAlarming(kernel('a', { seconds_to_oom: 7200 }), 1800)).toBe(false);
    expect(isAlarming(kernel('a', { actionable: false }), 1800)).toBe(false);
    expect(isAlarming(kernel('a', { leak: false }), 1800)).toBe(false);
    expect(isAlarming(kernel('a', null), 1800)).toBe(false);
    // actionable without a time forecast (steps only) still counts
    expect(isAlarming(kernel('a', { seconds_to_oom: null, steps_to_oom: 40 }), 1800)).toBe(true);
  });

  it('notifies once per kernel per episode', () => {
    let open: ReadonlySet<string> = new Set();
    let u = updateEpisodes(open, [kernel('a', {}), kernel('b', null)], 1800);
    expect(u.notify.map(k => k.kernel_id)).toEqual(['a']);
    open = u.open;
    u = updateEpisodes(open, [kernel('a', {}), kernel('b', null)], 1800);
    expect(u.notify).toEqual([]); // same episode, no repeat
    open = u.open;
    u = updateEpisodes(open, [kernel('a', { actionable: false })], 1800);
    expect(u.open.size).toBe(0); // episode over
    open = u.open;
    u = updateEpisodes(open, [kernel('a', {})], 1800);
    expect(u.notify.map(k => k.kernel_id)).toEqual(['a']); // new episode
  });

  it('ends the episode when the kernel goes away', () => {
    const u1 = updateEpisodes(new Set(), [kernel('a', {})], 1800);
    const u2 = updateEpisodes(u1.open, [], 1800);
    expect(u2.open.has('a')).toBe(false);
  });
});
