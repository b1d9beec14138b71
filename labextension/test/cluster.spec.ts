/**
 * The Cluster section (issue 10): the pure model over GET cluster's
 * document, the poller, and the view rendered to HTML in node (no DOM): the
 * 800-row table's render time is printed, not asserted.
 */
import * as React from 'react';

import { clockTime } from '../src/format';
import { ITrans, plainTrans } from '../src/i18n';
import {
  Cluster,
  ClusterGPU,
  ClusterHolder,
  clusterRows,
  DEFAULT_QUERY,
  filterCounts,
  filterRows,
  IClusterQuery,
  IClusterRow,
  memoryShare,
  nextSort,
  sortRows,
  textFilter,
  visibleRows
} from '../src/cluster/model';
import {
  holderName,
  clusterHolders,
  idleTitle,
  leakTitle,
  rowDisplay,
  summaryText
} from '../src/cluster/text';
import {
  emptyText,
  keepLastGood,
  PROMETHEUS_SETTING,
  stateNotice
} from '../src/cluster/notice';
import {
  ClusterPoller,
  IClusterResult,
  NO_CLUSTER
} from '../src/cluster/poller';
import { ClusterSection } from '../src/cluster/section';
import { CLUSTER_CSS } from '../src/cluster/style';
import {
  ClusterTable,
  IClusterTableProps,
  OVERSCAN,
  ROW_HEIGHT,
  windowRange
} from '../src/cluster/table';

// @jupyterlab/ui-components is ESM that jest (node, CommonJS) does not load:
// the section's toolbar button and icons are stood in for by plain elements.
jest.mock('@jupyterlab/ui-components', () => {
  const R = jest.requireActual('react');
  const icon = (name: string) => ({
    react: () => R.createElement('span', { 'data-icon': name })
  });
  return {
    ToolbarButtonComponent: (p: any) =>
      R.createElement(
        'button',
        {
          title: p.tooltip,
          disabled: p.enabled === false,
          'data-cluster-refresh': ''
        },
        p.label
      ),
    refreshIcon: icon('refresh'),
    caretDownIcon: icon('caret-down'),
    caretRightIcon: icon('caret-right')
  };
});

// react-dom ships no types here (and the test config no node types): the
// server renderer is all this test needs, through CommonJS's require.
declare const require: (id: string) => any;
const { renderToString } = require('react-dom/server') as {
  renderToString: (element: React.ReactElement) => string;
};

const GiB = 1024 ** 3;
const TOTAL = 85520809984; // an H100 80GB, as DCGM's used + free says

function holder(over: Partial<ClusterHolder> = {}): ClusterHolder {
  return {
    kernel_id: 'k-0000-0000',
    notebook: 'course/train.ipynb',
    user: 'me',
    memory: 4 * GiB,
    leak_actionable: false,
    seconds_to_oom: null,
    idle_seconds: null,
    mine: true,
    ...over
  };
}

function gpu(
  node: string,
  index: number,
  over: Partial<ClusterGPU> = {}
): ClusterGPU {
  return {
    node,
    gpu: String(index),
    uuid: `GPU-${node}-${index}`,
    model: 'NVIDIA H100 80GB HBM3',
    util: 0.5,
    mem_used: 10 * GiB,
    mem_total: TOTAL,
    power_w: 300,
    temp_c: 50,
    sm_clock_hz: 1.98e9,
    age_s: 1,
    stale: false,
    sources: ['dcgm'],
    holders: [],
    others: { count: 0, users: 0, memory: 0 },
    idle_holders: 0,
    leak_alarms: 0,
    ...over
  };
}

function doc(
  nodes: { node: string; gpus: ClusterGPU[] }[],
  over: Partial<Cluster> = {}
): Cluster {
  const all = nodes.flatMap(n => n.gpus);
  return {
    t: 1700000000,
    state: 'ok',
    message: null,
    show_users: false,
    truncated: null,
    nodes,
    summary: {
      nodes: nodes.length,
      gpus: all.length,
      held: all.filter(g => g.holders.length || g.others.count).length,
      mine: all.filter(g => g.holders.some(h => h.mine)).length,
      leak_alarms: all.reduce((s, g) => s + g.leak_alarms, 0),
      idle_holders: all.reduce((s, g) => s + g.idle_holders, 0),
      stale: all.filter(g => g.stale).length
    },
    ...over
  };
}

/** A small cluster with one of everything. */
function small(): Cluster {
  return doc([
    {
      node: 'node-a',
      gpus: [
        gpu('node-a', 0, {
          util: 0.9,
          mem_used: 70 * GiB,
          holders: [holder({ memory: 60 * GiB })],
          power_w: 600,
          temp_c: 70
        }),
        gpu('node-a', 1, {
          util: 0.1,
          mem_used: 20 * GiB,
          others: { count: 3, users: 2, memory: 12 * GiB },
          idle_holders: 1,
          power_w: 100,
          temp_c: 35
        })
      ]
    },
    {
      node: 'node-b',
      gpus: [
        gpu('node-b', 0, {
          util: null,
          mem_used: null,
          power_w: null,
          temp_c: null,
          holders: [
            holder({
              kernel_id: 'k-alice',
              notebook: 'alice/a.ipynb',
              user: 'alice',
              mine: false,
              memory: 8 * GiB,
              leak_actionable: true,
              seconds_to_oom: 720
            })
          ],
          leak_alarms: 1
        }),
        gpu('node-b', 1, {
          util: 0.5,
          mem_used: 40 * GiB,
          stale: true,
          age_s: 500
        })
      ]
    }
  ]);
}

/** 100 nodes x 8 GPUs, like tests/data/cluster/dcgm-100x8.prom.gz: a deterministic mix. */
function big(): Cluster {
  const nodes = [];
  for (let n = 0; n < 100; n++) {
    const node = `gpu-node-${String(n).padStart(3, '0')}`;
    const gpus = [];
    for (let i = 0; i < 8; i++) {
      const k = n * 8 + i;
      const held = k % 5 !== 0;
      const leak = k % 97 === 3;
      const idle = k % 61 === 7;
      gpus.push(
        gpu(node, i, {
          util: ((k * 37) % 101) / 100,
          mem_used: held ? ((k * 13) % 80) * GiB : 0.5 * GiB,
          power_w: 80 + ((k * 7) % 620),
          temp_c: 30 + (k % 50),
          sources: ['dcgm', 'jupyter'],
          holders:
            k === 42 ? [holder({ kernel_id: `k-${k}`, memory: 12 * GiB })] : [],
          others:
            held && k !== 42
              ? { count: 1 + (k % 3), users: 1, memory: 12 * GiB }
              : { count: 0, users: 0, memory: 0 },
          idle_holders: idle && held ? 1 : 0,
          leak_alarms: leak && held ? 1 : 0
        })
      );
    }
    nodes.push({ node, gpus });
  }
  return doc(nodes);
}

const ids = (rows: IClusterRow[]) => rows.map(r => r.id);

describe('clusterRows', () => {
  it('flattens nodes to one row per GPU, in document order', () => {
    const rows = clusterRows(small());
    expect(ids(rows)).toEqual(['node-a/0', 'node-a/1', 'node-b/0', 'node-b/1']);
    expect(rows.map(r => r.order)).toEqual([0, 1, 2, 3]);
    expect(rows[0].memShare).toBeCloseTo((70 * GiB) / TOTAL);
    expect(rows[0].mine).toBe(true);
    expect(rows[1].holderCount).toBe(3);
    expect(rows[2].memShare).toBeNull();
    expect(clusterRows(null)).toEqual([]);
  });

  it('names a GPU without an index by its UUID, unique either way', () => {
    const d = doc([
      {
        node: 'n',
        gpus: [
          gpu('n', 0, { gpu: null }),
          gpu('n', 1, { gpu: null, uuid: null })
        ]
      }
    ]);
    const rows = clusterRows(d);
    expect(ids(rows)).toEqual(['n/GPU-n-0', 'n/#1']);
    expect(rows[0].gpu).toBe('GPU-n-0');
    expect(rows[1].gpu).toBeNull();
  });

  it('computes the used share of memory, clamped', () => {
    expect(memoryShare(40, 80)).toBe(0.5);
    expect(memoryShare(90, 80)).toBe(1);
    expect(memoryShare(null, 80)).toBeNull();
    expect(memoryShare(1, 0)).toBeNull();
  });
});

describe('filters', () => {
  const rows = clusterRows(small());

  it('keeps mine, all, leak alarms or idle holders', () => {
    expect(ids(filterRows(rows, 'all'))).toEqual(ids(rows));
    expect(ids(filterRows(rows, 'mine'))).toEqual(['node-a/0']);
    expect(ids(filterRows(rows, 'alarms'))).toEqual(['node-b/0']);
    expect(ids(filterRows(rows, 'idle'))).toEqual(['node-a/1']);
    expect(filterCounts(rows)).toEqual({ mine: 1, all: 4, alarms: 1, idle: 1 });
  });

  it('matches text on node, notebook and user, case-insensitive, every term', () => {
    expect(ids(textFilter(rows, 'NODE-B'))).toEqual(['node-b/0', 'node-b/1']);
    expect(ids(textFilter(rows, 'train'))).toEqual(['node-a/0']);
    expect(ids(textFilter(rows, 'alice'))).toEqual(['node-b/0']);
    expect(ids(textFilter(rows, 'node-b  a.ipynb'))).toEqual(['node-b/0']);
    expect(ids(textFilter(rows, 'node-a alice'))).toEqual([]);
    expect(ids(textFilter(rows, '   '))).toEqual(ids(rows));
  });

  it('never matches holders the document does not name', () => {
    // node-a/1's three holders are counted only: nothing to match
    expect(ids(textFilter(rows, 'other'))).toEqual([]);
  });
});

describe('sortRows', () => {
  const rows = clusterRows(small());
  const by = (key: any, dir: 'asc' | 'desc') =>
    ids(sortRows(rows, { key, dir }));

  it('sorts by each column, unknown values last both ways', () => {
    expect(by('util', 'desc')).toEqual([
      'node-a/0',
      'node-b/1',
      'node-a/1',
      'node-b/0'
    ]);
    expect(by('util', 'asc')).toEqual([
      'node-a/1',
      'node-b/1',
      'node-a/0',
      'node-b/0'
    ]);
    expect(by('memory', 'desc')).toEqual([
      'node-a/0',
      'node-b/1',
      'node-a/1',
      'node-b/0'
    ]);
    expect(by('memory', 'asc')).toEqual([
      'node-a/1',
      'node-b/1',
      'node-a/0',
      'node-b/0'
    ]);
    expect(by('power', 'desc')).toEqual([
      'node-a/0',
      'node-b/1',
      'node-a/1',
      'node-b/0'
    ]);
    expect(by('temp', 'asc')).toEqual([
      'node-a/1',
      'node-b/1',
      'node-a/0',
      'node-b/0'
    ]);
    expect(by('holders', 'desc')).toEqual([
      'node-a/1',
      'node-a/0',
      'node-b/0',
      'node-b/1'
    ]);
    expect(by('leak', 'desc')).toEqual([
      'node-b/0',
      'node-a/0',
      'node-a/1',
      'node-b/1'
    ]);
    expect(by('node', 'desc')).toEqual([
      'node-b/1',
      'node-b/0',
      'node-a/1',
      'node-a/0'
    ]);
  });

  it('keeps ties in document order in both directions', () => {
    // power and temp are equal everywhere: the order is the document's
    const d = doc([
      { node: 'x', gpus: [0, 1, 2].map(i => gpu('x', i)) },
      { node: 'y', gpus: [0, 1].map(i => gpu('y', i)) }
    ]);
    const r = clusterRows(d);
    const want = ['x/0', 'x/1', 'x/2', 'y/0', 'y/1'];
    for (const key of [
      'util',
      'memory',
      'power',
      'temp',
      'holders',
      'leak'
    ] as const) {
      expect(ids(sortRows(r, { key, dir: 'asc' }))).toEqual(want);
      expect(ids(sortRows(r, { key, dir: 'desc' }))).toEqual(want);
    }
    // and the input is not changed
    expect(ids(r)).toEqual(want);
  });

  it('sorts nodes and GPU indices naturally', () => {
    const d = doc([
      { node: 'node-10', gpus: [gpu('node-10', 0)] },
      { node: 'node-2', gpus: [10, 9, 1].map(i => gpu('node-2', i)) }
    ]);
    expect(ids(sortRows(clusterRows(d), { key: 'node', dir: 'asc' }))).toEqual([
      'node-2/1',
      'node-2/9',
      'node-2/10',
      'node-10/0'
    ]);
  });

  it('flips the same column; another starts in its own direction', () => {
    expect(nextSort({ key: 'node', dir: 'asc' }, 'node')).toEqual({
      key: 'node',
      dir: 'desc'
    });
    expect(nextSort({ key: 'node', dir: 'asc' }, 'memory')).toEqual({
      key: 'memory',
      dir: 'desc'
    });
    expect(nextSort({ key: 'memory', dir: 'desc' }, 'memory')).toEqual({
      key: 'memory',
      dir: 'asc'
    });
    expect(nextSort({ key: 'memory', dir: 'desc' }, 'node')).toEqual({
      key: 'node',
      dir: 'asc'
    });
  });

  it('applies filter, text and sort together', () => {
    const q: IClusterQuery = {
      filter: 'all',
      sort: { key: 'memory', dir: 'desc' },
      text: 'node-b'
    };
    expect(ids(visibleRows(rows, q))).toEqual(['node-b/1', 'node-b/0']);
    expect(ids(visibleRows(rows, { ...q, filter: 'mine' }))).toEqual([]);
  });
});

describe('words', () => {
  it('summarizes the cluster in one line', () => {
    expect(
      summaryText({
        nodes: 100,
        gpus: 800,
        held: 480,
        mine: 2,
        leak_alarms: 3,
        idle_holders: 12,
        stale: 0
      })
    ).toBe('100 nodes · 800 GPUs · 480 held · 3 leak alarms · 12 idle holders');
    expect(
      summaryText({
        nodes: 1,
        gpus: 1,
        held: 0,
        mine: 0,
        leak_alarms: 1,
        idle_holders: 1,
        stale: 1
      })
    ).toBe('1 node · 1 GPU · 0 held · 1 leak alarm · 1 idle holder · 1 stale');
    expect(summaryText(null)).toBe('');
  });

  it('says who holds a GPU', () => {
    const [a0, a1, b0, b1] = clusterRows(small()).map(r => r.g);
    expect(clusterHolders(a0).text).toBe('you: train.ipynb');
    expect(clusterHolders(a1).text).toBe('2 other users');
    expect(clusterHolders(b0).text).toBe('alice: a.ipynb');
    expect(clusterHolders(b1)).toEqual({
      text: 'no kernel',
      title: 'No Jupyter kernel holds memory on it (other processes may)',
      count: 0
    });
    expect(clusterHolders(a0).title).toBe('you: train.ipynb: 60 GiB');
    expect(clusterHolders(a1).title).toBe('2 other users (3 kernels): 12 GiB');
    expect(clusterHolders(b0).title).toBe(
      'alice: a.ipynb: 8 GiB (leak, out of memory in about 12 min)'
    );
  });

  it('lists the reader first, then by memory, and counts the rest', () => {
    const g = gpu('n', 0, {
      holders: [
        holder({
          kernel_id: 'b',
          user: 'bob',
          notebook: 'b.ipynb',
          mine: false,
          memory: 9 * GiB
        }),
        holder({
          kernel_id: 'c',
          user: 'carol',
          notebook: 'c.ipynb',
          mine: false,
          memory: 20 * GiB
        }),
        holder({ kernel_id: 'm', memory: 1 * GiB, idle_seconds: 7500 })
      ],
      others: { count: 1, users: 1, memory: GiB }
    });
    const h = clusterHolders(g);
    expect(h.text).toBe('you: train.ipynb, carol: c.ipynb +1 · 1 other user');
    expect(h.count).toBe(4);
    expect(h.title.split('\n')).toEqual([
      'you: train.ipynb: 1 GiB (idle 2 h 5 min)',
      'carol: c.ipynb: 20 GiB',
      'bob: b.ipynb: 9 GiB',
      '1 other user: 1 GiB'
    ]);
  });

  it('names a holder without a notebook or user by its kernel', () => {
    expect(
      holderName(holder({ notebook: null, kernel_id: 'abcdef0123456' }))
    ).toBe('you: kernel abcdef01');
    expect(
      holderName(
        holder({
          notebook: null,
          user: null,
          mine: false,
          kernel_id: 'abcdef0123456'
        })
      )
    ).toBe('kernel abcdef01');
  });

  it('explains leak and idle marks', () => {
    const [, a1, b0] = clusterRows(small()).map(r => r.g);
    expect(leakTitle(b0)).toBe('1 leak alarm · out of memory in about 12 min');
    expect(leakTitle(a1)).toBe('');
    expect(idleTitle(a1)).toBe('1 idle holder'); // the idle holder is not named
    expect(idleTitle(b0)).toBe('');
  });

  it('formats a row: ratio to percent, watts, degrees, n/a', () => {
    const [a0, , b0] = clusterRows(small());
    const d = rowDisplay(a0);
    expect([d.util, d.memUsed, d.power, d.temp]).toEqual([
      '90%',
      '70 GiB',
      '600 W',
      '70 °C'
    ]);
    expect(d.memTitle).toBe('70/79.6 GiB (88%)');
    expect(d.memPercent).toBeCloseTo(87.9, 1);
    expect(d.memWarn).toBe(false);
    const n = rowDisplay(b0);
    expect([n.util, n.memUsed, n.power, n.temp, n.memPercent]).toEqual([
      'n/a',
      'n/a',
      'n/a',
      'n/a',
      null
    ]);
    const full = clusterRows(
      doc([{ node: 'n', gpus: [gpu('n', 0, { mem_used: 79 * GiB })] }])
    )[0];
    expect(rowDisplay(full).memWarn).toBe(true);
  });

  it('changes a row signature only when what it shows changes', () => {
    const a = clusterRows(small())[0];
    const b = clusterRows(small())[0];
    expect(rowDisplay(a).sig).toBe(rowDisplay(b).sig);
    const c = clusterRows(
      doc([{ node: 'node-a', gpus: [{ ...a.g, temp_c: 71 }] }])
    )[0];
    expect(rowDisplay(c).sig).not.toBe(rowDisplay(a).sig);
  });

  it('translates through the bundle it is given', () => {
    const upper: ITrans = {
      __: (s, ...a) => plainTrans.__(s, ...a).toUpperCase(),
      _n: (s, p, n, ...a) => plainTrans._n(s, p, n, ...a).toUpperCase()
    };
    expect(summaryText(small().summary, upper)).toBe(
      '2 NODES · 4 GPUS · 3 HELD · 1 LEAK ALARM · 1 IDLE HOLDER · 1 STALE'
    );
    expect(clusterHolders(clusterRows(small())[0].g, 'GiB', upper).text).toBe(
      'YOU: TRAIN.IPYNB'
    );
  });
});

describe('stateNotice', () => {
  const empty = (state: Cluster['state'], message: string | null) =>
    doc([], { state, message, summary: null });

  it('says how to configure Prometheus', () => {
    const n = stateNotice(
      empty(
        'not-configured',
        'No Prometheus configured: set c.GPUPanel.prometheus_url to see the cluster.'
      )
    )!;
    expect(n.level).toBe('info');
    expect(n.detail).toContain(PROMETHEUS_SETTING);
    expect(n.code).toBe('c.GPUPanel.prometheus_url');
  });

  it("shows the server's reason when Prometheus is unreachable", () => {
    const n = stateNotice(
      empty('unreachable', 'cannot reach Prometheus at http://p:9090: refused')
    )!;
    expect(n).toEqual({
      level: 'error',
      title: 'Cannot reach Prometheus',
      detail: 'cannot reach Prometheus at http://p:9090: refused'
    });
    expect(stateNotice(empty('unreachable', null))!.detail).toBe(
      'The server could not query the configured Prometheus.'
    );
  });

  it('marks stale data and missing series', () => {
    const stale = stateNotice(
      empty(
        'stale',
        'Every GPU’s last scrape is older than 120 s: is Prometheus still scraping?'
      )
    )!;
    expect(stale.level).toBe('warning');
    expect(stale.title).toBe('Cluster data is stale');
    expect(stale.detail).toContain('120 s');
    const none = stateNotice(empty('no-gpu-series', null))!;
    expect(none.title).toBe('No GPU series in Prometheus');
    expect(none.detail).toContain('check that it scrapes them');
  });

  it("says when the server read only part of Prometheus' answer", () => {
    const said =
      'Prometheus answered more than 50000 series: only the first 50000 are read, so some nodes and GPUs may be missing and the counts are lower bounds (raise c.GPUPanel.cluster_max_series).';
    const n = stateNotice(empty('truncated', said))!;
    expect(n).toEqual({
      level: 'warning',
      title: 'Cluster view truncated',
      detail: said
    });
    expect(stateNotice(empty('truncated', null))!.detail).toContain(
      'some nodes and GPUs may be missing'
    );
  });

  it('is silent when ok, and counts GPUs not scraped recently', () => {
    const ok = doc([{ node: 'n', gpus: [gpu('n', 0)] }]);
    expect(stateNotice(ok)).toBeNull();
    expect(stateNotice(small())!.title).toBe('1 GPU not scraped recently');
  });

  it('keeps the last table while Prometheus is unreachable, and says from when', () => {
    const good = small();
    const down = empty('unreachable', 'cannot reach Prometheus: refused');
    const kept = keepLastGood(good, null, down);
    expect(kept.keptFrom).toBe(good.t);
    expect(kept.doc.nodes).toBe(good.nodes);
    expect(kept.doc.summary).toBe(good.summary);
    expect([kept.doc.state, kept.doc.message]).toEqual([
      'unreachable',
      down.message
    ]);
    // still down: kept from the first time, not the kept copy's
    const again = keepLastGood(kept.doc, kept.keptFrom, {
      ...down,
      t: good.t + 60
    });
    expect(again.keptFrom).toBe(good.t);
    // back, or other states, or nothing to keep: shown as they are
    expect(keepLastGood(kept.doc, kept.keptFrom, good)).toEqual({
      doc: good,
      keptFrom: null
    });
    expect(keepLastGood(good, null, empty('stale', 'x')).keptFrom).toBeNull();
    expect(keepLastGood(null, null, down)).toEqual({
      doc: down,
      keptFrom: null
    });
    expect(stateNotice(kept.doc, plainTrans, kept.keptFrom)!.detail).toBe(
      `cannot reach Prometheus: refused Showing the last answer, from ${clockTime(good.t)}.`
    );
  });

  it('words an empty table by filter and text', () => {
    expect(emptyText({ ...DEFAULT_QUERY, filter: 'mine' })).toBe(
      'None of your kernels holds a GPU in the cluster.'
    );
    expect(emptyText({ ...DEFAULT_QUERY, filter: 'alarms' })).toBe(
      'No leak alarms in the cluster.'
    );
    expect(emptyText({ ...DEFAULT_QUERY, filter: 'idle' })).toBe(
      'No idle kernel holds a GPU in the cluster.'
    );
    expect(emptyText({ ...DEFAULT_QUERY, text: ' zzz ' })).toBe(
      'No GPU matches “zzz”.'
    );
  });
});

describe('ClusterPoller', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** A fetch whose answers the test releases one by one. */
  function controlled() {
    const pending: {
      resolve: (d: Cluster) => void;
      reject: (e: Error) => void;
    }[] = [];
    const fetch = jest.fn(
      () =>
        new Promise<Cluster>((resolve, reject) =>
          pending.push({ resolve, reject })
        )
    );
    return { fetch, pending };
  }
  const flush = async () => {
    for (let i = 0; i < 5; i++) {
      await Promise.resolve();
    }
  };

  it('polls every period while active, one request at a time', async () => {
    const { fetch, pending } = controlled();
    const seen: IClusterResult[] = [];
    const p = new ClusterPoller(fetch, r => seen.push(r), 10);
    expect(fetch).not.toHaveBeenCalled();
    p.setActive(true);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(p.result.fetching).toBe(true);
    // a slow answer: no second request piles up
    jest.advanceTimersByTime(30000);
    expect(fetch).toHaveBeenCalledTimes(1);
    pending[0].resolve(small());
    await flush();
    expect(p.result.doc?.summary?.gpus).toBe(4);
    expect(p.result.fetching).toBe(false);
    jest.advanceTimersByTime(9999);
    expect(fetch).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(1);
    expect(fetch).toHaveBeenCalledTimes(2);
    p.dispose();
  });

  it('stops while hidden and catches up when shown after a period', async () => {
    const { fetch, pending } = controlled();
    const p = new ClusterPoller(fetch, () => undefined, 10);
    p.setActive(true);
    pending[0].resolve(small());
    await flush();
    p.setActive(false);
    jest.advanceTimersByTime(60000);
    expect(fetch).toHaveBeenCalledTimes(1);
    p.setActive(true); // shown again, 60 s later: ask at once
    expect(fetch).toHaveBeenCalledTimes(2);
    pending[1].resolve(small());
    await flush();
    p.setActive(false);
    jest.advanceTimersByTime(4000);
    p.setActive(true); // 4 s later: the next poll 6 s on
    expect(fetch).toHaveBeenCalledTimes(2);
    jest.advanceTimersByTime(6000);
    expect(fetch).toHaveBeenCalledTimes(3);
    p.dispose();
  });

  it('keeps the last document on an error; Refresh joins a request in flight', async () => {
    const { fetch, pending } = controlled();
    const p = new ClusterPoller(fetch, () => undefined, 10);
    p.setActive(true);
    pending[0].resolve(small());
    await flush();
    const first = p.refresh();
    const second = p.refresh();
    expect(fetch).toHaveBeenCalledTimes(2);
    pending[1].reject(new Error('403 Forbidden'));
    await Promise.all([first, second]);
    expect(p.result.error).toBe('403 Forbidden');
    expect(p.result.doc?.summary?.gpus).toBe(4);
    // the next good answer clears the error
    jest.advanceTimersByTime(10000);
    pending[2].resolve(small());
    await flush();
    expect(p.result.error).toBeNull();
    p.dispose();
  });

  it('keeps the last nodes when Prometheus becomes unreachable', async () => {
    const { fetch, pending } = controlled();
    const p = new ClusterPoller(fetch, () => undefined, 10);
    p.setActive(true);
    pending[0].resolve(small());
    await flush();
    jest.advanceTimersByTime(10000);
    pending[1].resolve(
      doc([], { state: 'unreachable', message: 'down', summary: null })
    );
    await flush();
    expect(p.result.doc?.state).toBe('unreachable');
    expect(p.result.doc?.nodes.length).toBe(2);
    expect(p.result.keptFrom).toBe(small().t);
    jest.advanceTimersByTime(10000);
    pending[2].resolve(small());
    await flush();
    expect(p.result.keptFrom).toBeNull();
    expect(p.result.doc?.state).toBe('ok');
    p.dispose();
  });

  it('does not poll a server without Prometheus; Refresh still asks', async () => {
    const { fetch, pending } = controlled();
    const p = new ClusterPoller(fetch, () => undefined, 10);
    p.setActive(true);
    pending[0].resolve(
      doc([], { state: 'not-configured', message: 'set it', summary: null })
    );
    await flush();
    jest.advanceTimersByTime(60000);
    expect(fetch).toHaveBeenCalledTimes(1);
    void p.refresh();
    expect(fetch).toHaveBeenCalledTimes(2);
    p.dispose();
  });

  it('delivers nothing after dispose', async () => {
    const { fetch, pending } = controlled();
    const onChange = jest.fn();
    const p = new ClusterPoller(fetch, onChange, 10);
    p.setActive(true);
    const calls = onChange.mock.calls.length;
    p.dispose();
    pending[0].resolve(small());
    await flush();
    jest.advanceTimersByTime(60000);
    expect(onChange.mock.calls.length).toBe(calls);
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});

describe('windowRange', () => {
  it('renders the visible rows and a margin, within the table', () => {
    expect(windowRange(800, 0, 640, 20, 12)).toEqual([0, 44]);
    expect(windowRange(800, 2000, 640, 20, 12)).toEqual([88, 144]);
    expect(windowRange(800, 16000, 640, 20, 12)).toEqual([788, 800]);
    expect(windowRange(10, 0, 640, 20, 12)).toEqual([0, 10]);
    expect(windowRange(0, 500, 640, 20, 12)).toEqual([0, 0]);
    // a table scrolled past its (shrunk) end shows its last screenful, never an empty window
    expect(windowRange(5, 9000, 640, 20, 12)).toEqual([0, 5]);
    expect(windowRange(100, 9000, 640, 20, 12)).toEqual([56, 100]);
    expect(windowRange(800, 0, 640, 0, 12)).toEqual([0, 44]);
  });
});

describe('ClusterTable', () => {
  const base: IClusterTableProps = {
    doc: null,
    error: null,
    query: DEFAULT_QUERY,
    onQueryChange: () => undefined,
    trans: plainTrans
  };
  const render = (over: Partial<IClusterTableProps>) =>
    renderToString(React.createElement(ClusterTable, { ...base, ...over }));
  const count = (html: string, needle: string) => html.split(needle).length - 1;

  it('renders 800 rows with a sortable header, and prints the time it takes', () => {
    const d = big();
    render({ doc: small() }); // warm up the modules
    const q: IClusterQuery = {
      ...DEFAULT_QUERY,
      sort: { key: 'memory', dir: 'desc' }
    };
    const median = (f: () => void) => {
      const times: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        f();
        times.push(performance.now() - t0);
      }
      return times.sort((a, b) => a - b)[3];
    };
    const model = median(() => {
      const rows = visibleRows(clusterRows(d), q);
      rows.slice(0, 32 + OVERSCAN).forEach(r => rowDisplay(r));
    });
    let html = '';
    const whole = median(() => {
      html = render({ doc: d, query: q });
    });
    console.log(
      `[perf] ClusterTable, 100 nodes x 8 GPUs, median of 7: model (rows, sort, cell text of the rendered rows) ` +
        `${model.toFixed(1)} ms; whole render to HTML (react-dom/server in node, no DOM/layout) ` +
        `${whole.toFixed(1)} ms, ${html.length} bytes`
    );
    // windowed: the rows of the scroll box (640 px of 20 px rows) and a margin are in the DOM,
    // a spacer stands for the rest, and aria-rowcount tells the full count
    expect(count(html, 'data-cluster-row=""')).toBe(32 + OVERSCAN);
    expect(html).toContain('data-rows="800"');
    expect(html).toContain('aria-rowcount="801"');
    expect(html).toContain(`data-cluster-spacer="${800 - 32 - OVERSCAN}"`);
    expect(html).toContain(`height:${(800 - 32 - OVERSCAN) * ROW_HEIGHT}px`);
    expect(html).toContain('100 nodes · 800 GPUs');
    expect(html).toContain('aria-sort="descending" data-sort-key="memory"');
    expect(count(html, 'aria-sort="none"')).toBe(6);
    // rows in memory order: the first row holds the most
    const shares = (html.match(/data-mem-share="[\d.]+"/g) ?? []).map(m =>
      Number(m.slice(16, -1))
    );
    expect(shares.length).toBe(32 + OVERSCAN);
    expect(shares).toEqual([...shares].sort((a, b) => b - a));
    const top = Math.max(...clusterRows(d).map(r => r.memShare ?? 0));
    expect(shares[0]).toBeCloseTo(top, 3);
    // leak alarms and idle holders are marked; busy utilization is not
    const alarms = render({ doc: d, query: { ...q, filter: 'alarms' } });
    expect(count(alarms, 'data-kind="leak"')).toBe(d.summary!.leak_alarms);
    expect(count(alarms, 'data-kind="idle"')).toBe(0);
    const idle = render({ doc: d, query: { ...q, filter: 'idle' } });
    expect(count(idle, 'data-kind="idle"')).toBe(
      d.nodes.flatMap(n => n.gpus).filter(g => g.idle_holders).length
    );
    // the error colour is for a failed fetch or an unreachable Prometheus, never a busy GPU
    const errorRules = CLUSTER_CSS.split('}')
      .filter(rule => rule.includes('--jp-error-color'))
      .map(rule => rule.split('{')[0].trim());
    expect(errorRules).toEqual([
      ".jp-GpuPanel-cluster-notice[data-level='error']",
      '.jp-GpuPanel-cluster-error'
    ]);
    expect(html).toContain('aria-pressed="true">All');
  });

  it("shows the 'mine' filter's empty state", () => {
    const html = render({
      doc: big(),
      query: { ...DEFAULT_QUERY, filter: 'mine', text: 'gpu-node-099' }
    });
    expect(count(html, 'data-cluster-row=""')).toBe(0);
    expect(html).toContain('data-cluster-empty="mine"');
    expect(html).toContain('No GPU matches “gpu-node-099”.');
    const mine = render({
      doc: big(),
      query: { ...DEFAULT_QUERY, filter: 'mine' }
    });
    expect(count(mine, 'data-cluster-row=""')).toBe(1);
    expect(mine).toContain('data-mine="true"');
    const none = render({
      doc: small(),
      query: { ...DEFAULT_QUERY, filter: 'mine', text: 'node-b' }
    });
    expect(none).toContain('No GPU matches');
  });

  it('shows loading, errors and each state', () => {
    expect(render({})).toContain('Loading…');
    expect(render({ error: 'network error' })).toContain(
      'Could not load the cluster: network error'
    );
    expect(render({ doc: small(), error: '403 Forbidden' })).toContain(
      'Could not refresh the cluster: 403 Forbidden'
    );
    const nc = render({
      doc: doc([], { state: 'not-configured', message: 'x', summary: null })
    });
    expect(nc).toContain('data-cluster-banner="not-configured"');
    expect(nc).toContain('<code>c.GPUPanel.prometheus_url</code>');
    expect(nc).not.toContain('data-cluster-table');
    const un = render({
      doc: doc([], {
        state: 'unreachable',
        message: 'cannot reach Prometheus: refused',
        summary: null
      })
    });
    expect(un).toContain('role="alert"');
    expect(un).toContain('cannot reach Prometheus: refused');
    const kept = render({
      doc: { ...small(), state: 'unreachable', message: 'down' },
      keptFrom: small().t
    });
    expect(kept).toContain('data-cluster-banner="unreachable"');
    expect(kept).toContain('Showing the last answer, from');
    expect(kept).toContain('data-cluster-table');
    const stale = render({
      doc: { ...small(), state: 'stale', message: 'old scrapes' }
    });
    expect(stale).toContain('data-cluster-banner="stale"');
    expect(stale).toContain('data-cluster-table'); // the stale numbers are still shown
  });
});

describe('ClusterSection', () => {
  /** The store's side, as the section sees it. */
  const feed = () => ({
    showCluster: jest.fn(),
    refreshCluster: jest.fn(() => Promise.resolve())
  });

  it('renders open, loading, with a Refresh button, before its first answer', () => {
    const store = feed();
    const html = renderToString(
      React.createElement(ClusterSection, {
        cluster: NO_CLUSTER,
        feed: store,
        trans: plainTrans,
        visible: true
      })
    );
    expect(html).toContain('data-cluster-section=""');
    expect(html).toContain('data-open="true"');
    expect(html).toContain('aria-expanded="true"');
    expect(html).toContain('data-state="loading"');
    expect(html).toContain('Loading…');
    expect(html).toContain('title="Refresh the cluster"');
    // the store is told in an effect, when mounted in a page: not on the server
    expect(store.showCluster).not.toHaveBeenCalled();
    expect(store.refreshCluster).not.toHaveBeenCalled();
  });

  it("shows the store's document; collapsed, its summary without the table", () => {
    const cluster = { ...NO_CLUSTER, doc: small(), at: 1 };
    const open = renderToString(
      React.createElement(ClusterSection, {
        cluster,
        feed: feed(),
        trans: plainTrans,
        visible: true
      })
    );
    expect(open).toContain('data-state="ok"');
    expect(open).toContain('data-cluster-table');
    const html = renderToString(
      React.createElement(ClusterSection, {
        cluster,
        feed: feed(),
        trans: plainTrans,
        visible: true,
        defaultOpen: false
      })
    );
    expect(html).toContain('aria-expanded="false"');
    expect(html).toContain('data-icon="caret-right"');
    expect(html).not.toContain('data-cluster-view');
    expect(html).toContain(summaryText(small().summary));
  });
});
