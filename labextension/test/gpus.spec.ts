/**
 * The GPU views' logic: the overview rows of an 8-GPU node, who holds a
 * GPU, who "me" is, which processes a card lists, and the status-bar
 * summary (one GPU, several, lost ones, a recording).
 */
import {
  gpuHolders,
  holderName,
  overviewRows,
  serverUser,
  visibleProcesses
} from '../src/gpus/rows';
import { gpuTotals, statusSummary } from '../src/gpus/summary';
import { IProcessReading } from '../src/types';
import { GiB, gpu, kernel, MiB } from './fixtures';

function proc(partial: Partial<IProcessReading>): IProcessReading {
  return {
    pid: 1,
    used: MiB,
    name: 'python',
    user: 'me',
    command: null,
    owner: null,
    ...partial
  } as IProcessReading;
}

const kernelOwner = (notebook: string | null, kernel_name = 'python3') => ({
  kind: 'kernel' as const,
  kernel_id: 'k',
  kernel_name,
  notebook,
  user: 'me',
  via_pid: null
});

describe('who holds a GPU', () => {
  it('names a kernel by its notebook, a terminal and a program by their user', () => {
    expect(holderName(proc({ owner: kernelOwner('work/leaky.ipynb') }))).toBe(
      'leaky.ipynb'
    );
    expect(holderName(proc({ owner: kernelOwner(null) }))).toBe(
      'python3 kernel'
    );
    expect(
      holderName(
        proc({ user: 'alice', owner: { kind: 'terminal', via_pid: 9 } })
      )
    ).toBe('alice: terminal');
    expect(holderName(proc({ user: 'bob', name: 'train' }))).toBe('bob: train');
    expect(holderName(proc({ user: null, name: null, pid: 77 }))).toBe(
      'pid 77'
    );
  });

  it('groups a kernel and its workers, largest first, then +N', () => {
    const g = gpu({
      processes: [
        proc({ pid: 1, used: 2 * GiB, owner: kernelOwner('a.ipynb') }),
        proc({ pid: 2, used: 3 * GiB, owner: kernelOwner('a.ipynb') }), // a DataLoader worker
        proc({ pid: 3, used: 4 * GiB, user: 'bob', name: 'train' }),
        proc({ pid: 4, used: GiB, user: 'carol', name: 'eval' })
      ]
    });
    const h = gpuHolders(g);
    expect(h.count).toBe(3);
    expect(h.text).toBe('a.ipynb, bob: train +1');
    expect(h.title.split('\n')).toEqual([
      'a.ipynb: 5 GiB',
      'bob: train: 4 GiB',
      'carol: eval: 1 GiB'
    ]);
    expect(gpuHolders(gpu({ processes: [] })).text).toBe('idle');
  });

  it("finds the server's user from kernels, else from kernels' processes", () => {
    expect(serverUser([], [kernel({ user: 'me' })])).toBe('me');
    const g = gpu({
      processes: [
        proc({ user: 'bob' }),
        proc({ user: 'me', owner: kernelOwner('a.ipynb') })
      ]
    });
    expect(serverUser([g], [])).toBe('me');
    expect(
      serverUser([gpu({ processes: [proc({ user: 'bob' })] })])
    ).toBeNull();
  });

  it("lists others' processes only when asked, largest first", () => {
    const g = gpu({
      processes: [
        proc({ pid: 1, user: 'me', used: 1 }),
        proc({ pid: 2, user: 'bob', used: 3 }),
        proc({ pid: 3, user: 'me', used: 2 })
      ]
    });
    expect(visibleProcesses(g, 'me', true).shown.map(p => p.pid)).toEqual([
      2, 3, 1
    ]);
    const mine = visibleProcesses(g, 'me', false);
    expect(mine.shown.map(p => p.pid)).toEqual([3, 1]);
    expect(mine.hidden).toBe(1);
    // "me" unknown: nothing is hidden on a guess
    expect(visibleProcesses(g, null, false).hidden).toBe(0);
  });
});

/** Eight H100s, GPU i at 10*i % utilization and i+1 GiB used; GPU 0 held by a notebook. */
function node(): ReturnType<typeof gpu>[] {
  return Array.from({ length: 8 }, (_, i) =>
    gpu({
      index: 7 - i, // any order in, index order out
      util_gpu: 10 * (7 - i),
      mem_used: (8 - i) * GiB,
      mem_total: 80 * GiB,
      power_mw: 300000,
      temp_c: 40 + (7 - i),
      processes:
        7 - i === 0
          ? [proc({ used: GiB, owner: kernelOwner('train.ipynb') })]
          : []
    })
  );
}

describe('the overview', () => {
  it('has one row per GPU in index order, with every column', () => {
    const names = new Map([[0, 'NVIDIA H100 80GB HBM3']]);
    const rows = overviewRows(node(), names);
    expect(rows.map(r => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(rows[0]).toMatchObject({
      name: 'NVIDIA H100 80GB HBM3',
      utilText: '0%',
      memText: '1/80 GiB',
      powerText: '300 W',
      tempText: '40 °C'
    });
    expect(rows[0].holders.text).toBe('train.ipynb');
    expect(rows[7]).toMatchObject({
      name: 'GPU 7',
      util: 70,
      memPercent: 10,
      utilText: '70%'
    });
    expect(rows[7].holders.text).toBe('idle');
  });

  it('shows n/a for what a card does not report', () => {
    const [r] = overviewRows([gpu({ index: 0 })], new Map());
    expect([r.utilText, r.memText, r.powerText, r.tempText]).toEqual([
      'n/a',
      'n/a',
      'n/a',
      'n/a'
    ]);
    expect(r.memPercent).toBeNull();
  });
});

describe('the status-bar summary', () => {
  it('shows the one GPU as before', () => {
    const g = gpu({ util_gpu: 63, mem_used: 12.4 * GiB, mem_total: 80 * GiB });
    expect(statusSummary([g]).text).toBe('GPU 63% · 12.4/80 GiB');
  });

  it('summarises all GPUs of a node: count, mean utilization, summed memory', () => {
    const gpus = node();
    const t = gpuTotals(gpus);
    expect(t).toMatchObject({ count: 8, ok: 8, meanUtil: 35, maxUtil: 70 });
    const s = statusSummary(gpus);
    expect(s.text).toBe('8 GPUs 35% · 36/640 GiB');
    expect(s.tooltip).toHaveLength(9); // one line per GPU, then mean and busiest
    expect(s.tooltip[8]).toBe('Mean utilization 35%, busiest 70%');
  });

  it('counts lost GPUs out of the numbers and says how many', () => {
    const gpus = node();
    gpus[0] = gpu({ index: 7, state: 'lost', util_gpu: null });
    expect(statusSummary(gpus).text).toBe('8 GPUs 30% · 28/560 GiB · 1 lost');
    expect(statusSummary([gpu({ state: 'lost' })]).text).toBe('GPU lost');
    expect(statusSummary([]).text).toBe('GPU —');
  });

  it('marks a recording in the text, not only the tooltip', () => {
    const g = gpu({
      util_gpu: 100,
      mem_used: 15.7 * GiB,
      mem_total: 79.6 * GiB
    });
    const s = statusSummary([g], 'GiB', true, new Map([[0, 'H100']]));
    expect(s.text).toBe('Replay · GPU 100% · 15.7/79.6 GiB');
    expect(s.replay).toBe(true);
    expect(s.tooltip[0]).toBe('GPU 0 H100: 100%, 15.7/79.6 GiB (20%)');
    expect(s.tooltip[s.tooltip.length - 1]).toMatch(/Recorded data \(replay\)/);
  });

  it('uses GB when asked', () => {
    const s = statusSummary(node(), 'GB');
    expect(s.text).toMatch(/^8 GPUs 35% · [\d.]+\/687 GB$/);
  });
});
