/**
 * A probed run that ran out of GPU memory: the row says where and what held
 * the memory (the server's sentence, no forecast), lists the holders and
 * what to do, and the panel notifies once per OOM, never as a leak alarm.
 */
import { KernelAlerts } from '../src/kernelalerts';
import { isAlarming } from '../src/leakepisodes';
import { isOom, oomOf, oomView, updateOomEpisodes } from '../src/memory/oom';
import { leakLine } from '../src/memory/words';
import { IKernelInfo, IOomReport } from '../src/types';
import {
  GiB,
  kernel,
  MiB,
  nvmlVerdict,
  script,
  stepsVerdict
} from './fixtures';

const MESSAGE =
  'Ran out of memory at step 557 in cell [12]; `val_loss += model(xv).pow(2).mean()` (cell line 8) holds 5.2 GiB. It asked for 256 MiB with 6.9 GiB allocated and 7 GiB reserved of 7 GiB.';

function report(partial: Partial<IOomReport> = {}): IOomReport {
  return {
    step: 557,
    step_word: 'step',
    t: 1000,
    cell: 'c1',
    execution_count: 12,
    requested: 256 * MiB,
    allocated: 6.9 * GiB,
    reserved: 7 * GiB,
    limit: 7 * GiB,
    source: 'observer',
    site: { where: 'cell line 9', code: 'out = model(xb)' },
    holders: [
      {
        bytes: 2 * GiB,
        where: null,
        code: null,
        name: 'model',
        how: 'variable',
        model: true,
        graph: false
      },
      {
        bytes: 5.2 * GiB,
        where: 'cell line 8',
        code: 'val_loss += model(xv).pow(2).mean()',
        name: 'val_loss',
        how: 'variable',
        model: false,
        graph: true
      },
      {
        bytes: 1 * MiB,
        where: 'cell line 3',
        code: 'x = torch.randn(8, 8)',
        name: 'x',
        how: 'variable',
        model: false,
        graph: false
      },
      {
        bytes: 4,
        where: 'cell line 4',
        code: 'loss = f(x)',
        name: 'loss',
        how: 'variable',
        model: false,
        graph: false
      }
    ],
    error: 'CUDA out of memory. Tried to allocate 256.00 MiB.',
    advice: [
      "`val_loss` keeps every step's autograd graph: add `.item()` for a number, or `.detach()`.",
      'Run evaluation and generation under `torch.no_grad()`.',
      "Release cached memory gives torch's cache back; the variables stay.",
      'Restart the kernel to free all of its memory.'
    ],
    message: MESSAGE,
    ...partial
  };
}

function oomKernel(id = 'k1', oom: IOomReport = report()): IKernelInfo {
  return kernel({
    kernel_id: id,
    execution_state: 'idle',
    leak: stepsVerdict({
      state: 'oom',
      oom,
      message: oom.message,
      forecast: null,
      steps_to_oom: null,
      seconds_to_oom: null
    })
  });
}

describe('an OOM in a row', () => {
  it('is the verdict of a steps run in state oom only', () => {
    expect(oomOf(oomKernel().leak)?.step).toBe(557);
    expect(oomOf(stepsVerdict())).toBeNull();
    expect(oomOf(nvmlVerdict())).toBeNull();
    expect(oomOf(null)).toBeNull();
    expect(isOom(oomKernel())).toBe(true);
    expect(isOom(kernel({ leak: stepsVerdict() }))).toBe(false);
  });

  it('says where it ran out and what held the memory, never "full in"', () => {
    const line = leakLine(oomKernel().leak);
    expect(line).toBe(MESSAGE);
    expect(line).not.toContain('full in');
    // a run that ran out without a leak flagged (a single huge batch) says so too
    const noLeak = stepsVerdict({
      leak: false,
      actionable: false,
      state: 'oom',
      oom: report({ holders: [], message: 'Ran out of memory at step 3.' }),
      message: 'Ran out of memory at step 3.'
    });
    expect(leakLine(noLeak)).toBe('Ran out of memory at step 3.');
  });

  it('lists the largest holders with their code, and what to do', () => {
    const view = oomView(oomKernel().leak, 'GiB');
    expect(view).not.toBeNull();
    expect(view!.parts.filter(p => p.code).map(p => p.text)).toEqual([
      'val_loss += model(xv).pow(2).mean()'
    ]);
    expect(view!.holders).toHaveLength(3);
    expect(view!.holders[0].parts).toEqual([
      { text: 'val_loss += model(xv).pow(2).mean()', code: true },
      { text: ' (cell line 8)', code: false }
    ]);
    expect(view!.holders[0].bytes).toMatch(/^5\.2/);
    expect(view!.holders[1]).toMatchObject({ model: true });
    expect(view!.holders[1].parts).toEqual([{ text: 'model', code: true }]);
    const advice = view!.advice.map(a => a.map(p => p.text).join(''));
    expect(advice.some(a => a.includes('.item()'))).toBe(true);
    expect(advice.some(a => a.includes('torch.no_grad()'))).toBe(true);
    expect(advice.some(a => a.includes('Release cached memory'))).toBe(true);
    expect(advice.some(a => a.includes('Restart'))).toBe(true);
    expect(oomView(stepsVerdict())).toBeNull();
  });

  it('raises no leak alarm (the row is marked through isOom)', () => {
    expect(isAlarming(oomKernel(), 1e9)).toBe(false);
    expect(isAlarming(kernel({ leak: stepsVerdict() }), 1e9)).toBe(true);
  });
});

describe('the OOM notification', () => {
  it('comes once per OOM: again for a new one, not for the same one', () => {
    let u = updateOomEpisodes(new Set(), [
      oomKernel('a'),
      kernel({ kernel_id: 'b' })
    ]);
    expect(u.kernels.map(k => k.kernel_id)).toEqual(['a']);
    u = updateOomEpisodes(u.open, [oomKernel('a'), kernel({ kernel_id: 'b' })]);
    expect(u.kernels).toEqual([]);
    // the user ran the loop again and it ran out again: a new OOM
    u = updateOomEpisodes(u.open, [
      oomKernel('a', report({ t: 2000, step: 900 }))
    ]);
    expect(u.kernels.map(k => k.kernel_id)).toEqual(['a']);
    // steps came after it (the loop went on): nothing open
    u = updateOomEpisodes(u.open, [
      kernel({ kernel_id: 'a', leak: stepsVerdict() })
    ]);
    expect(u.open.size).toBe(0);
  });

  it('covers scripts, and the alerts call the handlers once', () => {
    const sc = script({ leak: oomKernel().leak });
    const seen: string[] = [];
    const alerts = new KernelAlerts({
      onOom: k => seen.push(`kernel ${k.kernel_id}`),
      onScriptOom: s => seen.push(`script ${s.pid}`),
      onLeak: k => seen.push(`leak ${k.kernel_id}`)
    });
    alerts.update([oomKernel('a')], [sc]);
    alerts.update([oomKernel('a')], [sc]);
    expect(seen).toEqual(['kernel a', `script ${sc.pid}`]);
  });
});
