/**
 * Pure: the GPU overview (one row per GPU: utilization, memory, power,
 * temperature, who holds it), who "me" is, and which processes a card
 * lists. No DOM, so jest covers it.
 */
import {
  baseName,
  formatMemoryPair,
  formatPercent,
  formatTemp,
  formatWatts,
  memoryPercent,
  MemoryUnits
} from '../format';
import { holdersText, IHoldersText } from '../holders';
import { ITrans, plainTrans } from '../i18n';
import { IGpuReading, IKernelInfo, IProcessReading } from '../types';

/** The OS user the server runs as: kernels and their processes run as it. */
export function serverUser(
  gpus: IGpuReading[],
  kernels: IKernelInfo[] | null = null
): string | null {
  for (const k of kernels ?? []) {
    if (k.user) {
      return k.user;
    }
  }
  for (const g of gpus) {
    for (const p of g.processes || []) {
      if (p.owner && p.owner.kind === 'kernel' && p.user) {
        return p.user;
      }
    }
  }
  return null;
}

/** A process as the overview names its holder: the notebook, the kernel, a terminal, or the program. */
export function holderName(
  p: IProcessReading,
  trans: ITrans = plainTrans
): string {
  const o = p.owner;
  if (o && o.kind === 'kernel') {
    if (o.notebook) {
      return baseName(o.notebook);
    }
    return o.kernel_name
      ? trans.__('%1 kernel', o.kernel_name)
      : trans.__('a kernel');
  }
  const who = p.user ? `${p.user}: ` : '';
  if (o && o.kind === 'terminal') {
    return `${who}${trans.__('terminal')}`;
  }
  return `${who}${p.name || trans.__('pid %1', p.pid)}`;
}

/**
 * Who holds a GPU: its processes grouped by holder (a notebook's kernel and
 * its DataLoader workers are one), largest memory first.
 */
export function gpuHolders(
  gpu: IGpuReading,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): IHoldersText {
  const bytes = new Map<string, number>();
  for (const p of gpu.processes || []) {
    const name = holderName(p, trans);
    bytes.set(name, (bytes.get(name) ?? 0) + (p.used ?? 0));
  }
  const named = [...bytes.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, b]) => ({ name, bytes: b }));
  return holdersText(named, {
    units,
    none: { text: trans.__('idle'), title: trans.__('No processes') }
  });
}

export interface IOverviewRow {
  index: number;
  name: string;
  state: IGpuReading['state'];
  util: number | null;
  utilText: string;
  memPercent: number | null;
  memText: string;
  powerText: string;
  tempText: string;
  holders: IHoldersText;
}

/** One overview row per GPU, in index order. */
export function overviewRows(
  gpus: IGpuReading[],
  names: ReadonlyMap<number, string>,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): IOverviewRow[] {
  return [...gpus]
    .sort((a, b) => a.index - b.index)
    .map(g => ({
      index: g.index,
      name: names.get(g.index) || trans.__('GPU %1', g.index),
      state: g.state,
      util: g.util_gpu ?? null,
      utilText: formatPercent(g.util_gpu),
      memPercent: memoryPercent(g.mem_used, g.mem_total),
      memText: formatMemoryPair(g.mem_used, g.mem_total, units),
      powerText: formatWatts(g.power_mw),
      tempText: formatTemp(g.temp_c),
      holders: gpuHolders(g, units, trans)
    }));
}

/**
 * The processes a card lists, largest first: all of them, or with
 * `showOthers` off only this server's user's and kernels' (when "me" is
 * known). `hidden` counts those left out.
 */
export function visibleProcesses(
  gpu: IGpuReading,
  me: string | null,
  showOthers: boolean
): { shown: IProcessReading[]; hidden: number; total: number } {
  const all = [...(gpu.processes || [])].sort(
    (a, b) => (b.used ?? 0) - (a.used ?? 0)
  );
  const shown =
    showOthers || !me
      ? all
      : all.filter(p => !p.user || p.user === me || p.owner?.kind === 'kernel');
  return { shown, hidden: all.length - shown.length, total: all.length };
}
