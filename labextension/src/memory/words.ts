/**
 * Pure: a memory row's words: the leak line, the probe's hints, whether
 * triage applies, and the triage result in the server's ranking. No DOM,
 * so jest covers it.
 */
import { formatBytes, leakText, MemoryUnits } from '../format';
import { ITrans, plainTrans } from '../i18n';
import { ILeakVerdict, IMemorySubject, IProbeInfo, ITriage } from '../types';

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * The leak line: the server's own message while it sees a leak (it names
 * the rate, the time and the step of the OOM) or after the run ran out of
 * memory (where, and what held it: no forecast), else the local summary.
 */
export function leakLine(
  leak: ILeakVerdict | null | undefined,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): string {
  if (
    leak &&
    (leak.leak || (leak.source === 'steps' && leak.state === 'oom')) &&
    typeof leak.message === 'string' &&
    leak.message.trim()
  ) {
    return leak.message;
  }
  return leakText(leak, units, trans);
}

export interface IHint {
  key: 'cells' | 'fragmentation';
  text: string;
  /** Warning style: the allocator is fragmented. */
  warn: boolean;
}

/** The probe's advice lines (per-cell growth, fragmentation), those with a message. */
export function probeHints(probe: IProbeInfo | null | undefined): IHint[] {
  const out: IHint[] = [];
  if (!probe) {
    return out;
  }
  const cells = probe.cells?.message;
  if (typeof cells === 'string' && cells.trim()) {
    out.push({ key: 'cells', text: cells, warn: false });
  }
  const frag = probe.fragmentation;
  if (frag && typeof frag.message === 'string' && frag.message.trim()) {
    out.push({
      key: 'fragmentation',
      text: frag.message,
      warn: frag.fragmented === true
    });
  }
  return out;
}

/** Whether the "Find the leaking line" button applies: an actionable leak in a probed kernel or script. */
export function canTriage(k: IMemorySubject): boolean {
  return !!(k.probe && k.leak && k.leak.leak && k.leak.actionable);
}

export interface ITextPart {
  text: string;
  code: boolean;
}

/** "`a` keeps b" -> [{a, code}, {" keeps b"}]; an unpaired backtick stays as text. */
export function codeParts(text: string): ITextPart[] {
  const out: ITextPart[] = [];
  const re = /`([^`]+)`/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) {
      out.push({ text: text.slice(last, m.index), code: false });
    }
    out.push({ text: m[1], code: true });
    last = m.index + m[0].length;
  }
  if (last < text.length) {
    out.push({ text: text.slice(last), code: false });
  }
  return out;
}

export interface ITriageStackView {
  where: string;
  code: string | null;
  /** "32 MiB a step". */
  perStep: string;
}

export interface ITriageView {
  state: 'requested' | 'done' | 'error';
  /** The line to show, backticked code split out. */
  parts: ITextPart[];
  /** Up to TRIAGE_STACKS sites, in the server's ranking (done only). */
  stacks: ITriageStackView[];
  /** Started by the server at the alarm, not by the user. */
  auto: boolean;
  /** The re-run button waits while a recording is under way. */
  busy: boolean;
}

export const TRIAGE_STACKS = 3;

/**
 * A triage result in words; null when there is none (or its state is
 * unknown). The stacks keep the server's order: it ranks them (kept bytes,
 * then what is not a step's transient), which a sort by bytes would undo.
 */
export function triageView(
  triage: ITriage | null | undefined,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): ITriageView | null {
  if (!triage) {
    return null;
  }
  const auto = triage.auto === true;
  if (triage.state === 'requested') {
    const n =
      isNum(triage.steps) && triage.steps > 0 ? Math.round(triage.steps) : null;
    let text =
      n === null
        ? trans.__('Recording allocations for the next steps…')
        : trans._n(
            'Recording allocations for the next %1 step…',
            'Recording allocations for the next %1 steps…',
            n,
            n
          );
    if (auto) {
      text += ` ${trans.__('(started at the leak alarm)')}`;
    }
    return {
      state: 'requested',
      parts: [{ text, code: false }],
      stacks: [],
      auto,
      busy: true
    };
  }
  if (triage.state === 'done') {
    const stacks = (Array.isArray(triage.stacks) ? triage.stacks : [])
      .filter(s => s && typeof s.where === 'string')
      .slice(0, TRIAGE_STACKS)
      .map(s => ({
        where: s.where,
        code: typeof s.code === 'string' && s.code.trim() ? s.code : null,
        perStep: trans.__('%1 a step', formatBytes(s.bytes_per_step, units))
      }));
    const message =
      typeof triage.message === 'string' && triage.message.trim()
        ? triage.message
        : stacks.length
          ? trans.__('Allocations that grew while recording:')
          : trans.__('No allocation kept growing while recording.');
    return {
      state: 'done',
      parts: codeParts(message),
      stacks,
      auto,
      busy: false
    };
  }
  if (triage.state === 'error') {
    const text =
      typeof triage.error === 'string' && triage.error.trim()
        ? triage.error
        : trans.__('The triage failed.');
    return {
      state: 'error',
      parts: [{ text, code: false }],
      stacks: [],
      auto,
      busy: false
    };
  }
  return null;
}
