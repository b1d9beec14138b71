/**
 * Idle GPU holders: the row's badge and sentence, one notification per
 * kernel per episode (the leak alarms' mechanism), the Release cached
 * memory reply in the row's words, and the line for culled kernels.
 */
import { trackEpisodes } from '../src/leakepisodes';
import {
  culledLine,
  idleBadgeText,
  idleMessage,
  isIdleHolder,
  recentCulled,
  updateIdleEpisodes
} from '../src/memory/idle';
import { errorOutcome, releaseOutcome, rowView } from '../src/memory/outcome';
import { ICulledKernel, IKernelInfo, IReleaseReply } from '../src/types';
import { GiB, kernel } from './fixtures';

const SERVER_MESSAGE =
  "Idle 42 min, holding 18.2 GiB; 17.9 GiB of it is torch's cache (Release cached memory frees it).";

/** A kernel idle 42 min holding `bytes` on GPU 0; an idle holder unless `holder` is false. */
function idleKernel(id: string, holder = true, bytes = 18 * GiB): IKernelInfo {
  return kernel({
    kernel_id: id,
    notebook: `dir/${id}.ipynb`,
    execution_state: 'idle',
    memory: { '0': bytes },
    idle: holder
      ? {
          seconds: 2520,
          holder: true,
          cached: 17.9 * GiB,
          message: SERVER_MESSAGE
        }
      : { seconds: 12, holder: false, cached: null, message: null }
  });
}

function culled(partial: Partial<ICulledKernel> = {}): ICulledKernel {
  return {
    kernel_id: 'c0ffee00-1234',
    notebook: 'runs/train.ipynb',
    t: 1000,
    idle_seconds: 3600,
    memory: 18 * GiB,
    ...partial
  };
}

describe('idle holder badge', () => {
  it('says idle and what the kernel holds, from all its GPUs', () => {
    const k = idleKernel('a');
    expect(isIdleHolder(k)).toBe(true);
    expect(idleBadgeText(k)).toBe('Idle · holding 18 GiB');
    const two = kernel({
      memory: { '0': 16 * GiB, '1': 2.2 * GiB },
      idle: idleKernel('b').idle
    });
    expect(idleBadgeText(two)).toBe('Idle · holding 18.2 GiB');
    expect(idleBadgeText(idleKernel('c', true, 512 * 1024 ** 2))).toBe(
      'Idle · holding 512 MiB'
    );
    expect(idleBadgeText(k, 'GB')).toBe('Idle · holding 19.3 GB');
  });

  it("gives the server's sentence, or the idle time and memory without one", () => {
    expect(idleMessage(idleKernel('a'))).toBe(SERVER_MESSAGE);
    const bare = kernel({
      memory: { '0': 18 * GiB },
      idle: { seconds: 3600, holder: true, cached: null, message: null }
    });
    expect(idleMessage(bare)).toBe('Idle 1 h, holding 18 GiB.');
    const noTime = kernel({
      memory: { '0': 18 * GiB },
      idle: { seconds: null, holder: true, cached: null, message: '  ' }
    });
    expect(idleMessage(noTime)).toBe('Idle, holding 18 GiB.');
  });

  it('is no holder while busy, idle briefly, or holding nothing', () => {
    expect(isIdleHolder(idleKernel('a', false))).toBe(false);
    expect(isIdleHolder(kernel())).toBe(false);
  });
});

describe('idle holder notifications', () => {
  it('notifies once per kernel per episode, and says when an episode ends', () => {
    let open: ReadonlySet<string> = new Set();
    let u = updateIdleEpisodes(open, [idleKernel('a'), idleKernel('b', false)]);
    expect(u.starting.map(k => k.kernel_id)).toEqual(['a']);
    expect(u.ended).toEqual([]);
    open = u.open;

    // the same episode, polled again (its idle time grows): no repeat
    u = updateIdleEpisodes(open, [idleKernel('a'), idleKernel('b', false)]);
    expect(u.starting).toEqual([]);
    open = u.open;

    // b becomes one too: b only
    u = updateIdleEpisodes(open, [idleKernel('a'), idleKernel('b')]);
    expect(u.starting.map(k => k.kernel_id)).toEqual(['b']);
    open = u.open;

    // a ran a cell (or released): its episode ends; idle again later, a new one
    u = updateIdleEpisodes(open, [idleKernel('a', false), idleKernel('b')]);
    expect(u.ended).toEqual(['a']);
    expect(u.starting).toEqual([]);
    open = u.open;
    u = updateIdleEpisodes(open, [idleKernel('a'), idleKernel('b')]);
    expect(u.starting.map(k => k.kernel_id)).toEqual(['a']);
    open = u.open;

    // a kernel shut down ends its episode
    u = updateIdleEpisodes(open, [idleKernel('b')]);
    expect(u.ended).toEqual(['a']);
    expect([...u.open]).toEqual(['b']);
  });

  it('is the same mechanism as the leak alarms', () => {
    const on = (x: { id: string; on: boolean }) => x.on;
    const key = (x: { id: string }) => x.id;
    const u1 = trackEpisodes(
      new Set(),
      [
        { id: 'x', on: true },
        { id: 'x', on: true }
      ],
      key,
      on
    );
    expect(u1.starting).toHaveLength(1); // a key listed twice starts once
    const u2 = trackEpisodes(u1.open, [{ id: 'x', on: false }], key, on);
    expect(u2.ended).toEqual(['x']);
    expect(u2.open.size).toBe(0);
  });
});

describe('Release cached memory outcomes', () => {
  const released = (partial: Partial<IReleaseReply> = {}): IReleaseReply =>
    ({
      kernel_id: 'k',
      action: 'release',
      ok: true,
      message:
        "Released 8 GiB of torch's cached GPU memory; the kernel's variables are kept.",
      freed: 8 * GiB,
      nvml_before: 18 * GiB,
      nvml_after: 10 * GiB,
      torch: true,
      cuda: true,
      reserved_before: 17.9 * GiB,
      reserved_after: 9.9 * GiB,
      ...partial
    }) as IReleaseReply;

  it("shows the server's sentence in the row", () => {
    const o = releaseOutcome(released());
    expect(o).toEqual({
      kind: 'done',
      action: 'release',
      level: 'info',
      message:
        "Released 8 GiB of torch's cached GPU memory; the kernel's variables are kept."
    });
    expect(rowView(null, o).note).toEqual({
      level: 'info',
      message:
        "Released 8 GiB of torch's cached GPU memory; the kernel's variables are kept."
    });
  });

  it('says so when there was nothing to release (not an error)', () => {
    const o = releaseOutcome(
      released({
        message: 'torch in this kernel has not used a GPU: nothing to release.',
        freed: 0,
        cuda: false
      })
    );
    expect(o).toMatchObject({
      level: 'info',
      message: 'torch in this kernel has not used a GPU: nothing to release.'
    });
  });

  it('is an error when the kernel did not answer, or was busy (409)', () => {
    const failed = releaseOutcome({
      kernel_id: 'k',
      action: 'release',
      ok: false,
      message: 'The kernel did not answer within 10 s.'
    });
    expect(failed).toMatchObject({
      level: 'error',
      message: 'The kernel did not answer within 10 s.'
    });
    expect(
      releaseOutcome({
        kernel_id: 'k',
        action: 'release',
        ok: false,
        message: ''
      })
    ).toMatchObject({
      level: 'error',
      message: 'The kernel did not release its cached memory.'
    });
    const busy = errorOutcome(
      'release',
      new Error(
        'the kernel is busy: release its cached memory when its cell has ended'
      )
    );
    expect(busy).toMatchObject({
      level: 'error',
      message:
        'Release cached memory failed: the kernel is busy: release its cached memory when its cell has ended'
    });
    // whatever the outcome, the row is not left busy
    for (const o of [failed, busy]) {
      expect(rowView(null, o).busy).toBe(false);
    }
  });
});

describe('culled kernels', () => {
  it('names the notebook, how long it sat idle and what it held', () => {
    expect(culledLine(culled())).toBe(
      'Shut down train.ipynb: idle 1 h while holding 18 GiB'
    );
    expect(culledLine(culled({ idle_seconds: 5400 }))).toBe(
      'Shut down train.ipynb: idle 1 h 30 min while holding 18 GiB'
    );
    expect(culledLine(culled({ notebook: null, idle_seconds: null }))).toBe(
      'Shut down kernel c0ffee00: idle while holding 18 GiB'
    );
  });

  it('lists the newest first, a few at most', () => {
    const list = [1, 2, 3, 4, 5].map(i =>
      culled({ kernel_id: `k${i}`, t: 1000 + i })
    );
    expect(recentCulled(list).map(c => c.kernel_id)).toEqual([
      'k5',
      'k4',
      'k3'
    ]);
    expect(recentCulled([])).toEqual([]);
    expect(recentCulled(undefined)).toEqual([]);
  });
});
