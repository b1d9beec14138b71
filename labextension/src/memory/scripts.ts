/**
 * Pure: a probed script's title, name and detail line (command, rank, pid,
 * who started it). No DOM, so jest covers it.
 */
import { baseName } from '../format';
import { ITrans, plainTrans } from '../i18n';
import { IScriptInfo } from '../types';

/** Longest script command shown before it is cut with "…" (the full one is the tooltip). */
export const SCRIPT_TITLE_MAX = 48;

/** One argument as a shell would need it: quoted when empty or holding spaces or quotes. */
function shellWord(a: string): string {
  return a === '' || /[\s'"]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a;
}

/**
 * A script's full command: the basename of argv[0], then the rest as given
 * ("/home/me/train.py --epochs 3" -> "train.py --epochs 3"); "" without argv.
 */
export function scriptCommand(s: Pick<IScriptInfo, 'argv'>): string {
  const argv = Array.isArray(s.argv)
    ? s.argv.filter(a => typeof a === 'string')
    : [];
  if (!argv.length) {
    return '';
  }
  return [baseName(argv[0]) || argv[0], ...argv.slice(1)]
    .map(shellWord)
    .join(' ');
}

/** A script row's title: its command cut to `max` characters, else "pid N". */
export function scriptTitle(
  s: Pick<IScriptInfo, 'argv' | 'pid'>,
  max = SCRIPT_TITLE_MAX,
  trans: ITrans = plainTrans
): string {
  const cmd = scriptCommand(s);
  if (!cmd) {
    return trans.__('pid %1', s.pid);
  }
  return cmd.length > max
    ? `${cmd.slice(0, Math.max(1, max - 1)).trimEnd()}…`
    : cmd;
}

function hasRank(s: Pick<IScriptInfo, 'rank'>): boolean {
  return s.rank !== null && s.rank !== undefined && String(s.rank) !== '';
}

/** A script in a sentence (the leak notification): "train.py --epochs 3 (rank 1)". */
export function scriptName(
  s: Pick<IScriptInfo, 'argv' | 'pid' | 'rank'>,
  trans: ITrans = plainTrans
): string {
  const title = scriptTitle(s, SCRIPT_TITLE_MAX, trans);
  return hasRank(s) ? trans.__('%1 (rank %2)', title, s.rank) : title;
}

/** Who started a script, in words, or null when unknown or unremarkable. */
export function scriptOrigin(
  owner: IScriptInfo['owner'],
  trans: ITrans = plainTrans
): string | null {
  if (!owner) {
    return null;
  }
  if (owner.kind === 'terminal') {
    return trans.__('from a terminal');
  }
  if (owner.kind === 'kernel') {
    return owner.notebook
      ? trans.__('from %1', baseName(owner.notebook))
      : trans.__('from a kernel');
  }
  return null;
}

/** The line beside a script's title: "rank 1 · pid 4242 · from a terminal". */
export function scriptDetail(
  s: IScriptInfo,
  trans: ITrans = plainTrans
): string {
  const parts: string[] = [];
  if (hasRank(s)) {
    parts.push(trans.__('rank %1', s.rank));
  }
  parts.push(trans.__('pid %1', s.pid));
  const origin = scriptOrigin(s.owner, trans);
  if (origin) {
    parts.push(origin);
  }
  return parts.join(' · ');
}
