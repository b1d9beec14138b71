import {
  appendReading,
  CHART_FIELDS,
  emptySeries,
  ISeries,
  latestTime,
  lowerBound,
  mergeSeries,
  mergeSeriesMaps,
  seriesFromHistory,
  trimSeries,
  windowData
} from '../src/history';
import { HistoryField, IGpuReading, IHistoryResponse } from '../src/types';
import { gpu } from './fixtures';

const F: HistoryField[] = ['util_gpu', 'mem_used'];

function series(
  t: number[],
  util: Array<number | null>,
  mem?: Array<number | null>
): ISeries {
  return {
    t: [...t],
    values: {
      util_gpu: [...util],
      mem_used: mem ? [...mem] : util.map(() => null)
    }
  };
}

function reading(
  t: number,
  util: number | null,
  mem: number | null = null
): IGpuReading {
  return gpu({ t, util_gpu: util, mem_used: mem });
}

describe('lowerBound', () => {
  it('finds the first index at or after t', () => {
    const t = [1, 2, 2, 5];
    expect(lowerBound(t, 0)).toBe(0);
    expect(lowerBound(t, 2)).toBe(1);
    expect(lowerBound(t, 3)).toBe(3);
    expect(lowerBound(t, 6)).toBe(4);
    expect(lowerBound([], 1)).toBe(0);
  });
});

describe('mergeSeries', () => {
  it('interleaves by time and lets the incoming value win on equal times', () => {
    const a = series([1, 3, 5], [10, 30, 50]);
    const b = series([2, 3, 6], [20, 33, 60]);
    const m = mergeSeries(a, b, F);
    expect(m.t).toEqual([1, 2, 3, 5, 6]);
    expect(m.values.util_gpu).toEqual([10, 20, 33, 50, 60]);
    expect(m.values.mem_used).toHaveLength(5);
  });

  it('treats float-noise-equal times as one sample', () => {
    const m = mergeSeries(
      series([1.0000001], [1]),
      series([1.0000002], [2]),
      F
    );
    expect(m.t).toHaveLength(1);
    expect(m.values.util_gpu).toEqual([2]);
  });

  it('fills columns missing from one side with null', () => {
    const a: ISeries = { t: [1], values: { util_gpu: [5] } };
    const m = mergeSeries(a, series([2], [6], [7]), F);
    expect(m.values.mem_used).toEqual([null, 7]);
  });
});

describe('appendReading', () => {
  it('appends in place on the fast path', () => {
    const s = series([1, 2], [1, 2]);
    const out = appendReading(s, reading(3, 3, 300), F);
    expect(out).toBe(s);
    expect(s.t).toEqual([1, 2, 3]);
    expect(s.values.mem_used).toEqual([null, null, 300]);
  });

  it('merges an out-of-order or repeated reading without duplicating', () => {
    const s = series([1, 3], [1, 3]);
    const out = appendReading(s, reading(2, 2), F);
    expect(out.t).toEqual([1, 2, 3]);
    const again = appendReading(out, reading(3, 33), F);
    expect(again.t).toEqual([1, 2, 3]);
    expect(again.values.util_gpu).toEqual([1, 2, 33]);
  });

  it('ignores a reading without a time and stores non-numbers as null', () => {
    const s = emptySeries(F);
    appendReading(s, reading(NaN, 1), F);
    expect(s.t).toHaveLength(0);
    appendReading(
      s,
      { index: 0, t: 5, util_gpu: 'x' } as unknown as IGpuReading,
      F
    );
    expect(s.values.util_gpu).toEqual([null]);
  });
});

describe('trimSeries', () => {
  it('drops old points once past the slack, keeping columns aligned', () => {
    const t = Array.from({ length: 100 }, (_, i) => i);
    const s = series(t, t);
    trimSeries(s, 10, 64);
    expect(s.t).toHaveLength(100); // 10 < slack: not worth a splice yet
    trimSeries(s, 70, 64);
    expect(s.t[0]).toBe(70);
    expect(s.values.util_gpu[0]).toBe(70);
    expect(s.values.mem_used).toHaveLength(30);
  });
});

describe('history seed', () => {
  const resp: IHistoryResponse = {
    now: 10,
    interval: 1,
    processes: [],
    older: null,
    fields: ['util_gpu', 'mem_used'],
    gpus: [
      {
        index: 0,
        t: [3, 1, 2],
        values: { util_gpu: [30, 10, 20], mem_used: [3, 1, 2] }
      },
      { index: 1, t: [1], values: { util_gpu: [5] } }
    ]
  };

  it('builds sorted series per GPU, null for missing fields', () => {
    const m = seriesFromHistory(resp, F);
    expect(m.get(0)!.t).toEqual([1, 2, 3]);
    expect(m.get(0)!.values.util_gpu).toEqual([10, 20, 30]);
    expect(m.get(1)!.values.mem_used).toEqual([null]);
    expect(latestTime(m)).toBe(3);
  });

  it('merges a seed under stream ticks that arrived first (reload keeps the past)', () => {
    const live = new Map([[0, series([3, 4], [31, 40])]]);
    const seed = seriesFromHistory(resp, F);
    const m = mergeSeriesMaps(live, seed, F);
    expect(m.get(0)!.t).toEqual([1, 2, 3, 4]);
    // the live tick wins over the seed for the same time
    expect(m.get(0)!.values.util_gpu).toEqual([10, 20, 31, 40]);
    expect(m.get(1)!.t).toEqual([1]);
  });

  it('knows every chart field', () => {
    expect(CHART_FIELDS).toEqual(
      expect.arrayContaining(['util_gpu', 'mem_used', 'power_mw', 'temp_c'])
    );
  });
});

describe('windowData', () => {
  it('slices the window ending at the newest sample, with scaling', () => {
    const s = series([0, 50, 100, 130], [1, 2, 3, 4], [1000, 2000, 3000, 4000]);
    const d = windowData(s, ['util_gpu', 'mem_used'], 60, { mem_used: 1000 });
    expect(d[0]).toEqual([100, 130]);
    expect(d[1]).toEqual([3, 4]);
    expect(d[2]).toEqual([3, 4]);
  });

  it('returns empty columns for an empty series', () => {
    expect(windowData(emptySeries(F), F, 60)).toEqual([[], [], []]);
  });

  it('is independent of the browser clock', () => {
    const s = series([1e9, 1e9 + 1], [1, 2]);
    expect(windowData(s, ['util_gpu'], 60)[0]).toHaveLength(2);
  });
});
