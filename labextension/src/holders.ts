/**
 * Pure: who holds a GPU, in words. One function for the GPU overview (its
 * processes grouped by holder) and the Cluster section (the kernels the
 * deployment names, the other users' counted): the first names then "+N",
 * the unnamed holders counted after a " · ", and a tooltip with every
 * holder's memory, one a line.
 */
import { formatBytes, MemoryUnits } from './format';

/** A named holder, in the order the row lists them. */
export interface IHolder {
  name: string;
  bytes: number;
  /** Said after its memory in the tooltip ("leak, out of memory in about 12 min"). */
  note?: string;
}

/** Holders counted, not named (other users' kernels on a cluster). */
export interface IUnnamedHolders {
  /** After the names: "2 other users". */
  label: string;
  /** Their tooltip line's name: "2 other users (3 kernels)". */
  line: string;
  /** How many holders they are (added to `count`). */
  count: number;
  bytes: number;
}

export interface IHoldersText {
  /** "train.ipynb, alice: a.ipynb +1 · 3 other users", or `none.text`. */
  text: string;
  /** Every holder with its memory, one a line (the tooltip). */
  title: string;
  /** Holders, named and counted. */
  count: number;
}

export interface IHoldersOptions {
  units?: MemoryUnits;
  /** What a GPU nobody holds says ("idle", "no kernel") and its tooltip. */
  none: { text: string; title: string };
  /** Holders counted, not named; null or absent when there are none. */
  others?: IUnnamedHolders | null;
}

/** Most names a row shows before "+N". */
export const HOLDERS_SHOWN = 2;

/** Who holds a GPU: `named` in the order given (the caller sorts), then the unnamed ones counted. */
export function holdersText(
  named: readonly IHolder[],
  options: IHoldersOptions
): IHoldersText {
  const units = options.units ?? 'GiB';
  const others = options.others ?? null;
  const count = named.length + (others?.count ?? 0);
  if (count === 0) {
    return { ...options.none, count };
  }
  const parts: string[] = [];
  if (named.length) {
    const shown = named.slice(0, HOLDERS_SHOWN).map(h => h.name);
    const more = named.length - shown.length;
    parts.push(more > 0 ? `${shown.join(', ')} +${more}` : shown.join(', '));
  }
  const lines = named.map(h => {
    const note = h.note ? ` (${h.note})` : '';
    return `${h.name}: ${formatBytes(h.bytes, units)}${note}`;
  });
  if (others) {
    parts.push(others.label);
    lines.push(`${others.line}: ${formatBytes(others.bytes, units)}`);
  }
  return { text: parts.join(' · '), title: lines.join('\n'), count };
}
