/**
 * Pure: what the status bar says about all GPUs at once. One GPU: its use;
 * several: how many, their mean utilization and summed memory, and how many
 * are lost; a recording is marked as such in the text, not only the tooltip.
 */
import {
  formatMemoryPair,
  formatPercent,
  memoryPercent,
  MemoryUnits,
  shortNumber,
  unitBytes
} from '../format';
import { ITrans, plainTrans } from '../i18n';
import { IGpuReading } from '../types';

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

export interface IGpuTotals {
  /** GPUs in the snapshot. */
  count: number;
  /** Of those, in state 'ok'. */
  ok: number;
  /** Mean utilization of the ok GPUs that report one; null when none does. */
  meanUtil: number | null;
  /** The busiest ok GPU's utilization. */
  maxUtil: number | null;
  /** Summed over the ok GPUs that report both. */
  memUsed: number | null;
  memTotal: number | null;
}

export function gpuTotals(gpus: IGpuReading[]): IGpuTotals {
  let ok = 0;
  let utilSum = 0;
  let utilN = 0;
  let maxUtil: number | null = null;
  let used = 0;
  let total = 0;
  let memN = 0;
  for (const g of gpus) {
    if (g.state !== 'ok') {
      continue;
    }
    ok++;
    if (isNum(g.util_gpu)) {
      utilSum += g.util_gpu;
      utilN++;
      maxUtil = maxUtil === null ? g.util_gpu : Math.max(maxUtil, g.util_gpu);
    }
    if (isNum(g.mem_used) && isNum(g.mem_total)) {
      used += g.mem_used;
      total += g.mem_total;
      memN++;
    }
  }
  return {
    count: gpus.length,
    ok,
    meanUtil: utilN ? utilSum / utilN : null,
    maxUtil,
    memUsed: memN ? used : null,
    memTotal: memN ? total : null
  };
}

/** "160/637 GiB": whole units from 100 up, as the single-GPU pair. */
function memoryTotalText(t: IGpuTotals, units: MemoryUnits): string {
  if (t.memUsed === null || t.memTotal === null) {
    return formatMemoryPair(null, null, units);
  }
  const big = unitBytes(units);
  return `${shortNumber(t.memUsed / big)}/${shortNumber(t.memTotal / big)} ${units}`;
}

export interface IStatusSummary {
  /** The status bar text. */
  text: string;
  /** Recorded data: the item is styled as a recording too. */
  replay: boolean;
  /** One line per GPU, then notes; the tooltip. */
  tooltip: string[];
}

/**
 * "GPU 63% · 12.4/79.6 GiB" for one GPU; "8 GPUs 41% · 160/637 GiB" (mean
 * utilization, summed memory) for several, with "· 1 lost" when some fell
 * off; "Replay · " in front of either when the numbers are a recording.
 */
export function statusSummary(
  gpus: IGpuReading[],
  units: MemoryUnits = 'GiB',
  replay = false,
  names: ReadonlyMap<number, string> = new Map(),
  trans: ITrans = plainTrans
): IStatusSummary {
  const t = gpuTotals(gpus);
  let text: string;
  if (t.count === 0) {
    text = trans.__('GPU —');
  } else if (t.ok === 0) {
    text = trans._n('GPU lost', '%1 GPUs lost', t.count, t.count);
  } else if (t.count === 1) {
    const g = gpus[0];
    text = trans.__(
      'GPU %1 · %2',
      formatPercent(g.util_gpu),
      formatMemoryPair(g.mem_used, g.mem_total, units)
    );
  } else {
    text = trans.__(
      '%1 GPUs %2 · %3',
      t.count,
      formatPercent(t.meanUtil),
      memoryTotalText(t, units)
    );
    const lost = t.count - t.ok;
    if (lost > 0) {
      text += ` · ${trans._n('%1 lost', '%1 lost', lost, lost)}`;
    }
  }
  if (replay) {
    text = trans.__('Replay · %1', text);
  }
  const tooltip = gpus.map(g => {
    const name = names.get(g.index);
    const pct = memoryPercent(g.mem_used, g.mem_total);
    const state = g.state !== 'ok' ? ` (${g.state})` : '';
    return trans.__(
      'GPU %1%2: %3, %4%5',
      g.index,
      name ? ` ${name}` : '',
      formatPercent(g.util_gpu),
      formatMemoryPair(g.mem_used, g.mem_total, units) +
        (pct === null ? '' : ` (${Math.round(pct)}%)`),
      state
    );
  });
  if (t.count > 1 && t.meanUtil !== null) {
    tooltip.push(
      trans.__(
        'Mean utilization %1, busiest %2',
        formatPercent(t.meanUtil),
        formatPercent(t.maxUtil)
      )
    );
  }
  if (replay) {
    tooltip.push(trans.__("Recorded data (replay): not this machine's GPUs"));
  }
  return { text, replay, tooltip };
}
