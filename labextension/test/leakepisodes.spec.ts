import { isAlarming, scriptKey, updateEpisodes } from '../src/leakepisodes';
import { IKernelInfo, ILeakVerdict, IScriptInfo } from '../src/types';

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

function script(pid: number, leak: Partial<ILeakVerdict> | null): IScriptInfo {
  return {
    pid,
    argv: ['train.py'],
    rank: null,
    owner: { kind: 'terminal' },
    probe: { steps: 10, alive: true },
    leak: kernel('x', leak).leak
  };
}

describe('script leak notifications', () => {
  it('keys scripts by script:<pid> and notifies once per episode', () => {
    expect(scriptKey(script(7, {}))).toBe('script:7');
    let u = updateEpisodes(new Set(), [kernel('a', {})], 1800, [script(7, {}), script(8, null)]);
    expect(u.notify.map(k => k.kernel_id)).toEqual(['a']);
    expect(u.notifyScripts.map(s => s.pid)).toEqual([7]);
    expect([...u.open].sort()).toEqual(['a', 'script:7']);
    u = updateEpisodes(u.open, [kernel('a', {})], 1800, [script(7, {})]);
    expect(u.notify).toEqual([]);
    expect(u.notifyScripts).toEqual([]); // same episode
    u = updateEpisodes(u.open, [], 1800, [script(7, { seconds_to_oom: 7200 })]);
    expect(u.open.size).toBe(0); // OOM beyond the horizon: over
    u = updateEpisodes(u.open, [], 1800, [script(7, {})]);
    expect(u.notifyScripts.map(s => s.pid)).toEqual([7]); // new episode
    u = updateEpisodes(u.open, [], 1800, []);
    expect(u.open.has('script:7')).toBe(false); // the script ended
  });

  it('keeps kernels and scripts apart, and the old call shape works', () => {
    const u = updateEpisodes(new Set(['script:7']), [kernel('7', {})], 1800);
    expect(u.notify.map(k => k.kernel_id)).toEqual(['7']); // a kernel id is not a script key
    expect(u.notifyScripts).toEqual([]);
    expect(u.open.has('script:7')).toBe(false);
  });
});
