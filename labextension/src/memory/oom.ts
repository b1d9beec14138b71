/**
 * Pure: a probed run that ran out of GPU memory. The server's verdict says
 * so (`state: "oom"`, source steps) with the failure's explanation (`oom`):
 * the step and cell, what was asked and held, the largest holders by line,
 * and what to do. This module puts it in a row's words and says when to
 * notify: once per OOM (a new failure in the same kernel notifies again).
 * No DOM, so jest covers it.
 */
import { formatBytes, MemoryUnits } from '../format';
import { ITrans, plainTrans } from '../i18n';
import { IEpisodes, scriptKey, trackEpisodes } from '../leakepisodes';
import { IKernelInfo, ILeakVerdict, IOomReport, IScriptInfo } from '../types';
import { codeParts, ITextPart } from './words';

/** Holders a row lists (the server sends up to eight, largest first). */
export const OOM_HOLDERS = 3;

/** The failure a verdict explains, or null while the run goes on (or never ran out). */
export function oomOf(
  leak: ILeakVerdict | null | undefined
): IOomReport | null {
  if (!leak || leak.source !== 'steps' || leak.state !== 'oom') {
    return null;
  }
  return leak.oom ?? null;
}

export function isOom(subject: { leak: ILeakVerdict | null }): boolean {
  return oomOf(subject.leak) !== null;
}

export interface IOomHolderView {
  /** "`val_loss += …` (cell line 8)", or the variable's name. */
  parts: ITextPart[];
  /** "5.2 GiB". */
  bytes: string;
  /** A model's parameters or optimizer state: listed, never the one to blame. */
  model: boolean;
}

export interface IOomView {
  /** The server's sentence, backticked code split out. */
  parts: ITextPart[];
  holders: IOomHolderView[];
  /** What to do, most specific first (the server's words). */
  advice: ITextPart[][];
}

function holderLabel(h: IOomReport['holders'][number], trans: ITrans): string {
  if (h.where && h.code) {
    return `\`${h.code}\` (${h.where})`;
  }
  if (h.where) {
    return h.name ? `\`${h.where}\` (\`${h.name}\`)` : `\`${h.where}\``;
  }
  return h.name ? `\`${h.name}\`` : trans.__('(no line recorded)');
}

/** A failure in a row's words; null when there is none. */
export function oomView(
  leak: ILeakVerdict | null | undefined,
  units: MemoryUnits = 'GiB',
  trans: ITrans = plainTrans
): IOomView | null {
  const oom = oomOf(leak);
  if (!oom) {
    return null;
  }
  const message =
    typeof oom.message === 'string' && oom.message.trim()
      ? oom.message
      : trans.__('Ran out of GPU memory.');
  return {
    parts: codeParts(message),
    holders: [...oom.holders]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, OOM_HOLDERS)
      .map(h => ({
        parts: codeParts(holderLabel(h, trans)),
        bytes: formatBytes(h.bytes, units),
        model: h.model
      })),
    advice: oom.advice.map(a => codeParts(a))
  };
}

/** One OOM's key: the kernel (or script) and when it failed, so the next OOM is a new episode. */
export function oomKey(id: string, oom: IOomReport | null): string {
  return `${id}@oom:${oom?.t ?? ''}:${oom?.step ?? ''}`;
}

export interface IOomEpisodes {
  kernels: IKernelInfo[];
  scripts: IScriptInfo[];
  open: Set<string>;
}

/**
 * Which kernels and scripts ran out of memory since the last kernels
 * document (notify once each OOM); the set of OOMs still shown.
 */
export function updateOomEpisodes(
  open: ReadonlySet<string>,
  kernels: readonly IKernelInfo[],
  scripts: readonly IScriptInfo[] = []
): IOomEpisodes {
  const k: IEpisodes<IKernelInfo> = trackEpisodes(
    open,
    kernels,
    x => oomKey(x.kernel_id, oomOf(x.leak)),
    isOom
  );
  const s: IEpisodes<IScriptInfo> = trackEpisodes(
    open,
    scripts,
    x => oomKey(scriptKey(x), oomOf(x.leak)),
    isOom
  );
  return {
    kernels: k.starting,
    scripts: s.starting,
    open: new Set([...k.open, ...s.open])
  };
}
