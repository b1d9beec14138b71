import { legendValue } from '../src/history';
import {
  chartUnit,
  FORECAST_MAX_SPAN,
  forecastSegment,
  formatStep,
  kernelChart,
  measuredSeries,
  mergeX
} from '../src/memory/chart';
import {
  SCRIPT_TITLE_MAX,
  scriptCommand,
  scriptDetail,
  scriptName,
  scriptOrigin,
  scriptTitle
} from '../src/memory/scripts';
import {
  canTriage,
  codeParts,
  leakLine,
  probeHints,
  triageView
} from '../src/memory/words';
import { IScriptInfo } from '../src/types';
import {
  GiB,
  kernel,
  MiB,
  nvmlVerdict,
  probe,
  script as baseScript,
  stepsVerdict as verdict,
  StepsVerdict,
  triage
} from './fixtures';

describe('measuredSeries', () => {
  it('plots the probe per step when it has two points or more', () => {
    const m = measuredSeries(
      kernel({ probe: probe(), history: { t: [1, 2, 3], used: [1, 2, 3] } })
    )!;
    expect(m.axis).toBe('step');
    expect(m.x).toEqual([0, 50, 100]);
    expect(m.keys).toEqual(['allocated', 'reserved']);
    expect(m.cols[1]).toEqual([2 * GiB, 3 * GiB, 4 * GiB]);
  });

  it('falls back to NVML history over time with fewer than two steps', () => {
    const p = probe({ series: { step: [7], allocated: [1], reserved: [1] } });
    const m = measuredSeries(
      kernel({ probe: p, history: { t: [10, 11], used: [5, 6] } })
    )!;
    expect(m.axis).toBe('time');
    expect(m.keys).toEqual(['used']);
    expect(m.cols).toEqual([[5, 6]]);
  });

  it('drops a reserved column with no numbers and fills short columns with null', () => {
    const p = probe({
      series: { step: [1, 2, 3], allocated: [1, 2], reserved: [] }
    });
    const m = measuredSeries(kernel({ probe: p }))!;
    expect(m.keys).toEqual(['allocated']);
    expect(m.cols[0]).toEqual([1, 2, null]);
  });

  it('has nothing to plot without two points anywhere', () => {
    expect(measuredSeries(kernel())).toBeNull();
    expect(
      measuredSeries(kernel({ history: { t: [1], used: [1] } }))
    ).toBeNull();
    const p = probe({ series: { step: [3], allocated: [1], reserved: [1] } });
    expect(measuredSeries(kernel({ probe: p }))).toBeNull();
  });
});

describe('forecastSegment', () => {
  const x = [0, 50, 100];

  it('draws a forecast on its own axis only', () => {
    const f = { axis: 'step' as const, x0: 100, y0: 1, x1: 200, y1: 2 };
    expect(forecastSegment(f, 'step', x)).toEqual({
      x0: 100,
      y0: 1,
      x1: 200,
      y1: 2,
      clipped: false
    });
    expect(forecastSegment(f, 'time', x)).toBeNull();
    expect(forecastSegment(null, 'step', x)).toBeNull();
    expect(forecastSegment(undefined, 'step', x)).toBeNull();
  });

  it('refuses a malformed or backwards forecast', () => {
    expect(
      forecastSegment(
        { axis: 'step', x0: 100, y0: 1, x1: 100, y1: 2 },
        'step',
        x
      )
    ).toBeNull();
    expect(
      forecastSegment(
        { axis: 'step', x0: 100, y0: NaN, x1: 200, y1: 2 },
        'step',
        x
      )
    ).toBeNull();
  });

  it('cuts a far forecast to FORECAST_MAX_SPAN times the data span, keeping its slope', () => {
    const s = forecastSegment(
      { axis: 'step', x0: 100, y0: 10, x1: 10100, y1: 110 },
      'step',
      x
    )!;
    expect(s.clipped).toBe(true);
    expect(s.x1).toBe(100 + FORECAST_MAX_SPAN * 100);
    expect(s.y1).toBeCloseTo(10 + (100 * FORECAST_MAX_SPAN * 100) / 10000);
  });
});

describe('mergeX', () => {
  it('merges extra points in order, once, without duplicating equal x', () => {
    expect(mergeX([0, 50, 100], [100, 200])).toEqual({
      x: [0, 50, 100, 200],
      from: [0, 1, 2, -1]
    });
    expect(mergeX([0, 50, 100], [75, 75])).toEqual({
      x: [0, 50, 75, 100],
      from: [0, 1, -1, 2]
    });
    expect(mergeX([10, 20], [5])).toEqual({ x: [5, 10, 20], from: [-1, 0, 1] });
    // Float noise in unix seconds is the same point.
    expect(mergeX([1700000000.5], [1700000000.5000002]).x).toHaveLength(1);
  });
});

describe('chartUnit', () => {
  it('uses the setting, or MiB/MB below one of it', () => {
    expect(chartUnit(3 * GiB, 'GiB')).toEqual({ name: 'GiB', bytes: GiB });
    expect(chartUnit(300 * MiB, 'GiB')).toEqual({ name: 'MiB', bytes: MiB });
    expect(chartUnit(3e9, 'GB')).toEqual({ name: 'GB', bytes: 1e9 });
    expect(chartUnit(3e8, 'GB')).toEqual({ name: 'MB', bytes: 1e6 });
  });
});

describe('kernelChart', () => {
  it("titles the probe's positions by what they are", () => {
    const title = (step_source: StepsVerdict['step_source']) =>
      kernelChart(
        kernel({ probe: probe(), leak: verdict({ step_source }) }),
        'GiB'
      )!.title;
    expect(title('optimizer')).toBe('Memory by step (GiB)');
    expect(title('forward')).toBe('Memory by iteration (GiB)');
    expect(title('timer')).toBe('Memory, read each second (GiB)');
  });

  it('plots allocated and reserved per step, the forecast dashed to the OOM and the limit', () => {
    const leak = verdict({
      capacity: 8 * GiB,
      forecast: { axis: 'step', x0: 100, y0: 3 * GiB, x1: 250, y1: 8 * GiB }
    });
    const c = kernelChart(kernel({ probe: probe(), leak }), 'GiB')!;
    expect(c.axis).toBe('step');
    expect(c.unit).toBe('GiB');
    expect(c.title).toBe('Memory by step (GiB)');
    expect(c.lines).toEqual(['allocated', 'reserved', 'forecast', 'limit']);
    expect(c.forecast).toBe(true);
    expect(c.forecastClipped).toBe(false);
    expect(c.data[0]).toEqual([0, 50, 100, 250]);
    expect(c.data[1]).toEqual([1, 2, 3, null]);
    expect(c.data[2]).toEqual([2, 3, 4, null]);
    expect(c.data[3]).toEqual([null, null, 3, 8]);
    expect(c.data[4]).toEqual([8, 8, 8, 8]);
    expect(c.capacity).toBe(8 * GiB);
  });

  it('does not draw a time forecast over a step chart', () => {
    const leak = verdict({
      forecast: { axis: 'time', x0: 100, y0: 1, x1: 200, y1: 2 }
    });
    const c = kernelChart(kernel({ probe: probe(), leak }))!;
    expect(c.forecast).toBe(false);
    expect(c.lines).toEqual(['allocated', 'reserved']);
    expect(c.data[0]).toEqual([0, 50, 100]);
  });

  it('plots NVML use over time in MiB when small, with a time forecast', () => {
    const history = {
      t: [1000, 1010, 1020],
      used: [100 * MiB, 200 * MiB, 300 * MiB]
    };
    const leak = nvmlVerdict({
      forecast: {
        axis: 'time',
        x0: 1020,
        y0: 300 * MiB,
        x1: 1040,
        y1: 500 * MiB
      }
    });
    const c = kernelChart(kernel({ history, leak }), 'GiB')!;
    expect(c.axis).toBe('time');
    expect(c.unit).toBe('MiB');
    expect(c.title).toBe('Kernel GPU memory (MiB)');
    expect(c.lines).toEqual(['used', 'forecast']);
    expect(c.data).toEqual([
      [1000, 1010, 1020, 1040],
      [100, 200, 300, null],
      [null, null, 300, 500]
    ]);
  });

  it('follows the GB setting', () => {
    const history = { t: [1, 2], used: [2e9, 3e9] };
    const c = kernelChart(kernel({ history }), 'GB')!;
    expect(c.unit).toBe('GB');
    expect(c.data[1]).toEqual([2, 3]);
  });

  it('is null with nothing to plot', () => {
    expect(kernelChart(kernel({ leak: verdict() }))).toBeNull();
  });
});

describe('formatStep', () => {
  it('is short for a narrow axis', () => {
    expect(formatStep(0)).toBe('0');
    expect(formatStep(950)).toBe('950');
    expect(formatStep(2500)).toBe('2.5k');
    expect(formatStep(3000)).toBe('3k');
    expect(formatStep(12000)).toBe('12k');
    expect(formatStep(1_200_000)).toBe('1.2M');
  });
});

describe('leakLine', () => {
  it("shows the server's forecast message during a leak", () => {
    expect(leakLine(verdict())).toBe(
      'Leaking 32 MiB a step, full in ~70 s, around step 2,508.'
    );
  });

  it('falls back to the local summary without a message', () => {
    expect(
      leakLine(
        verdict({
          message: '',
          bytes_per_second: GiB / 60,
          steps_to_oom: null
        })
      )
    ).toBe('Leak: +1 GiB/min, out of memory in about 1 min');
    expect(leakLine(null)).toBe('No verdict yet');
    expect(leakLine(verdict({ leak: false, message: 'No growth' }))).toBe(
      'No growth'
    );
  });
});

describe('probeHints', () => {
  it('lists the cell and fragmentation advice that has a message', () => {
    expect(probeHints(null)).toEqual([]);
    expect(probeHints(probe())).toEqual([]);
    expect(
      probeHints(
        probe({
          cells: {
            leaking_cells: [],
            message: 'Cell 3 keeps 1 GiB: `%reset out`'
          },
          fragmentation: {
            fragmented: true,
            message: 'Set expandable_segments'
          }
        })
      )
    ).toEqual([
      { key: 'cells', text: 'Cell 3 keeps 1 GiB: `%reset out`', warn: false },
      { key: 'fragmentation', text: 'Set expandable_segments', warn: true }
    ]);
    expect(
      probeHints(
        probe({
          cells: { leaking_cells: [], message: null },
          fragmentation: { fragmented: false, message: 'ok' }
        })
      )
    ).toEqual([{ key: 'fragmentation', text: 'ok', warn: false }]);
  });
});

describe('canTriage', () => {
  it('needs an actionable leak and a probe', () => {
    expect(canTriage(kernel({ probe: probe(), leak: verdict() }))).toBe(true);
    expect(canTriage(kernel({ probe: null, leak: verdict() }))).toBe(false);
    expect(
      canTriage(
        kernel({ probe: probe(), leak: verdict({ actionable: false }) })
      )
    ).toBe(false);
    expect(
      canTriage(kernel({ probe: probe(), leak: verdict({ leak: false }) }))
    ).toBe(false);
    expect(canTriage(kernel({ probe: probe(), leak: null }))).toBe(false);
  });
});

describe('codeParts', () => {
  it('splits backticked code out of a message', () => {
    expect(codeParts('`a.py:1 x` keeps 1 MiB')).toEqual([
      { text: 'a.py:1 x', code: true },
      { text: ' keeps 1 MiB', code: false }
    ]);
    expect(codeParts('plain')).toEqual([{ text: 'plain', code: false }]);
    expect(codeParts('run `%reset out` then `gc.collect()`.')).toEqual([
      { text: 'run ', code: false },
      { text: '%reset out', code: true },
      { text: ' then ', code: false },
      { text: 'gc.collect()', code: true },
      { text: '.', code: false }
    ]);
    expect(codeParts('an odd ` backtick')).toEqual([
      { text: 'an odd ` backtick', code: false }
    ]);
  });
});

describe('triageView', () => {
  it('is null without a triage', () => {
    expect(triageView(null)).toBeNull();
    expect(triageView(undefined)).toBeNull();
  });

  it('says it is recording, and waits', () => {
    const v = triageView(
      triage({ state: 'requested', message: null, steps: 4 })
    )!;
    expect(v.busy).toBe(true);
    expect(v.parts).toEqual([
      { text: 'Recording allocations for the next 4 steps…', code: false }
    ]);
    const auto = triageView(
      triage({ state: 'requested', steps: 1, auto: true })
    )!;
    expect(auto.parts[0].text).toBe(
      'Recording allocations for the next 1 step… (started at the leak alarm)'
    );
  });

  it("shows the message with its code and the top three stacks in the server's ranking", () => {
    const stack = (
      where: string,
      perStep: number,
      code: string | null = 'x'
    ) => ({
      where,
      code,
      bytes: perStep * 4,
      bytes_per_step: perStep,
      count: 4,
      every_step: true
    });
    const v = triageView(
      triage({
        stacks: [
          stack('a.py:1 f', MiB),
          stack('leaky.ipynb:12 <module>', 32 * MiB, 'kept.append(h)'),
          stack('b.py:2 g', 2 * MiB, null),
          stack('c.py:3 h', 512)
        ]
      })
    )!;
    expect(v.state).toBe('done');
    expect(v.busy).toBe(false);
    expect(v.parts).toEqual([
      { text: 'leaky.ipynb:12 kept.append(h.detach())', code: true },
      { text: ' keeps 32 MiB a step', code: false }
    ]);
    // The server ranks the stacks (kept bytes, then what is not a step's
    // transient): a sort by bytes here would undo that.
    expect(v.stacks).toEqual([
      { where: 'a.py:1 f', code: 'x', perStep: '1 MiB a step' },
      {
        where: 'leaky.ipynb:12 <module>',
        code: 'kept.append(h)',
        perStep: '32 MiB a step'
      },
      { where: 'b.py:2 g', code: null, perStep: '2 MiB a step' }
    ]);
  });

  it('words a done triage without a message', () => {
    expect(triageView(triage({ message: null }))!.parts[0].text).toBe(
      'No allocation kept growing while recording.'
    );
  });

  it('shows the error', () => {
    const v = triageView(
      triage({ state: 'error', message: null, error: 'the probe is gone' })
    )!;
    expect(v.state).toBe('error');
    expect(v.parts).toEqual([{ text: 'the probe is gone', code: false }]);
    expect(
      triageView(triage({ state: 'error', error: null }))!.parts[0].text
    ).toBe('The triage failed.');
  });
});

describe('legendValue', () => {
  it('takes the last sample, or the last non-null one', () => {
    expect(legendValue([1, 2, null])).toBeNull();
    expect(legendValue([1, 2, null], true)).toBe(2);
    expect(legendValue([], true)).toBeNull();
    expect(legendValue([3])).toBe(3);
  });
});

function script(partial: Partial<IScriptInfo> = {}): IScriptInfo {
  return baseScript({
    argv: ['/home/me/runs/train.py', '--epochs', '3'],
    leak: verdict(),
    ...partial
  });
}

describe('scripts', () => {
  it('titles a script by its command: the basename of argv[0], then the rest', () => {
    expect(scriptCommand(script())).toBe('train.py --epochs 3');
    expect(scriptTitle(script())).toBe('train.py --epochs 3');
    // arguments a shell would need quoted are quoted
    expect(
      scriptCommand(script({ argv: ['t.py', '--name', 'my run', ''] }))
    ).toBe("t.py --name 'my run' ''");
    expect(scriptCommand(script({ argv: ['t.py', "it's"] }))).toBe(
      "t.py 'it'\\''s'"
    );
    expect(scriptCommand(script({ argv: ['-c'] }))).toBe('-c');
  });

  it('cuts a long command with an ellipsis, and falls back to the pid', () => {
    const long = script({
      argv: ['train.py', '--config', 'configs/' + 'x'.repeat(80) + '.yaml']
    });
    const t = scriptTitle(long);
    expect(t.length).toBe(SCRIPT_TITLE_MAX);
    expect(t.endsWith('…')).toBe(true);
    expect(t.startsWith('train.py --config configs/')).toBe(true);
    expect(scriptTitle(script({ argv: [] }))).toBe('pid 4242');
    expect(
      scriptTitle(script({ argv: undefined as unknown as string[] }))
    ).toBe('pid 4242');
  });

  it('names the rank, the pid and who started it', () => {
    expect(scriptDetail(script())).toBe('pid 4242 · from a terminal');
    expect(
      scriptDetail(script({ rank: '1', owner: { kind: 'process' } }))
    ).toBe('rank 1 · pid 4242');
    expect(scriptDetail(script({ rank: '0', owner: null }))).toBe(
      'rank 0 · pid 4242'
    );
    expect(scriptName(script({ rank: '3' }))).toBe(
      'train.py --epochs 3 (rank 3)'
    );
    expect(scriptName(script())).toBe('train.py --epochs 3');
    expect(
      scriptOrigin({
        kind: 'kernel',
        kernel_id: 'k',
        kernel_name: 'python3',
        notebook: 'dir/a.ipynb',
        user: null,
        via_pid: null
      })
    ).toBe('from a.ipynb');
    expect(
      scriptOrigin({
        kind: 'kernel',
        kernel_id: 'k',
        kernel_name: null,
        notebook: null,
        user: null,
        via_pid: null
      })
    ).toBe('from a kernel');
    expect(scriptOrigin({ kind: 'process' })).toBeNull();
  });

  it('charts and triages a script like a kernel', () => {
    const s = script({
      leak: verdict({
        forecast: { axis: 'step', x0: 100, y0: 3 * GiB, x1: 200, y1: 6 * GiB }
      })
    });
    const c = kernelChart(s)!;
    expect(c.axis).toBe('step');
    expect(c.title).toBe('Memory by step (GiB)');
    expect(c.lines).toEqual(['allocated', 'reserved', 'forecast']);
    expect(c.forecast).toBe(true);
    expect(canTriage(s)).toBe(true);
    expect(canTriage(script({ probe: null }))).toBe(false);
    const noSteps = { step: [], allocated: [], reserved: [] };
    expect(
      kernelChart(script({ probe: probe({ series: noSteps }) }))
    ).toBeNull(); // no NVML history for scripts
  });
});
