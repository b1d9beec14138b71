import { isAlarming, scriptKey, updateEpisodes } from '../src/leakepisodes';
import { IKernelInfo, IScriptInfo } from '../src/types';
import {
  kernel as baseKernel,
  NvmlVerdict,
  nvmlVerdict,
  probe,
  script as baseScript,
  stepsVerdict
} from './fixtures';

/** A kernel whose NVML verdict is an actionable leak (1 MB/s, OOM in 10 min), overridden by `leak`. */
function kernel(id: string, leak: Partial<NvmlVerdict> | null): IKernelInfo {
  return baseKernel({
    kernel_id: id,
    notebook: `${id}.ipynb`,
    leak: leak ? nvmlVerdict(leak) : null
  });
}

describe('leak notifications', () => {
  it('alarms only on actionable leaks inside the horizon', () => {
    expect(isAlarming(kernel('a', {}), 1800)).toBe(true);
    expect(isAlarming(kernel('a', { seconds_to_oom: 7200 }), 1800)).toBe(false);
    expect(isAlarming(kernel('a', { actionable: false }), 1800)).toBe(false);
    expect(isAlarming(kernel('a', { leak: false }), 1800)).toBe(false);
    expect(isAlarming(kernel('a', null), 1800)).toBe(false);
    // actionable without a time forecast (steps only) still counts
    const stepsOnly = baseKernel({
      leak: stepsVerdict({ seconds_to_oom: null, steps_to_oom: 40 })
    });
    expect(isAlarming(stepsOnly, 1800)).toBe(true);
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

function script(pid: number, leak: Partial<NvmlVerdict> | null): IScriptInfo {
  return baseScript({
    pid,
    argv: ['train.py'],
    probe: probe({ pid, kernel_id: null, steps: 10 }),
    leak: kernel('x', leak).leak
  });
}

describe('script leak notifications', () => {
  it('keys scripts by script:<pid> and notifies once per episode', () => {
    expect(scriptKey(script(7, {}))).toBe('script:7');
    let u = updateEpisodes(new Set(), [kernel('a', {})], 1800, [
      script(7, {}),
      script(8, null)
    ]);
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
